package api

import (
	"context"
	"errors"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const testPassword = "correct-horse-battery"

func newStaffStore(t *testing.T) (*StaffStore, *clock, *storetest.DB) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db := storetest.New(map[string]storetest.Key{"staff": {PK: "login"}, "sessions": {PK: "session_hash"}, "owners": {PK: "case_id"}})
	st := &StaffStore{DB: db, Accounts: "staff", Sessions: "sessions", Now: c.now, Cost: bcrypt.MinCost}
	return st, c, db
}

func TestStaffCreateStoresOnlyABcryptHashAndRefusesBadInput(t *testing.T) {
	st, _, _ := newStaffStore(t)
	ctx := context.Background()
	a, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.PasswordHash, testPassword) || !strings.HasPrefix(a.PasswordHash, "$2") {
		t.Fatalf("stored %q, want a bcrypt hash", a.PasswordHash)
	}
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err == nil {
		t.Fatal("a second account with the same login was created")
	}
	for _, c := range []struct{ login, role, tenant, pw string }{
		{"anna2", RoleIntegrator, "", testPassword}, // not a staff role
		{"Anna Smith", RoleReviewer, "", testPassword},
		{"anna3", RoleReviewer, "", "short"},
		{"anna4", RoleReviewer, "Bad Tenant", testPassword},
	} {
		if _, err := st.Create(ctx, c.login, c.role, c.tenant, c.pw); err == nil {
			t.Errorf("created %+v", c)
		}
	}
}

func TestStaffSignInLocksAfterFiveWrongPasswords(t *testing.T) {
	st, c, _ := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SignIn(ctx, "nobody", testPassword); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown login: %v", err)
	}
	for i := 1; i < MaxPasswordFailures; i++ {
		if _, _, err := st.SignIn(ctx, "anna", "wrong-password-"+string(rune('a'+i))); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	if _, _, err := st.SignIn(ctx, "anna", "wrong-again"); !errors.Is(err, ErrStaffLocked) {
		t.Fatalf("fifth wrong password: %v, want locked", err)
	}
	if _, _, err := st.SignIn(ctx, "anna", testPassword); !errors.Is(err, ErrStaffLocked) {
		t.Fatalf("right password while locked: %v, want locked", err)
	}
	c.t = c.t.Add(StaffLockout + time.Second)
	cookie, sess, err := st.SignIn(ctx, "anna", testPassword)
	if err != nil || cookie == "" || sess.CSRF == "" || sess.Role != RoleReviewer {
		t.Fatalf("after the lockout: %q %+v %v", cookie, sess, err)
	}
	// The count starts again after a success: four wrong passwords do not lock.
	for i := 1; i < MaxPasswordFailures; i++ {
		if _, _, err := st.SignIn(ctx, "anna", "nope-nope-nope"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password %d after success: %v", i, err)
		}
	}
}

func TestSessionExpiresAndSignOutEndsIt(t *testing.T) {
	st, c, _ := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	cookie, _, err := st.SignIn(ctx, "anna", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Session(ctx, cookie); !ok || err != nil {
		t.Fatalf("fresh session: %v %v", ok, err)
	}
	if _, ok, _ := st.Session(ctx, cookie+"x"); ok {
		t.Fatal("a forged cookie found a session")
	}
	c.t = c.t.Add(SessionTTL)
	if _, ok, _ := st.Session(ctx, cookie); ok {
		t.Fatal("the session outlived its TTL")
	}
	cookie, _, _ = st.SignIn(ctx, "anna", testPassword)
	if err := st.SignOut(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Session(ctx, cookie); ok {
		t.Fatal("the session outlived sign-out")
	}
}

func TestCSRFComparison(t *testing.T) {
	s := Session{CSRF: "abc"}
	if !s.ValidCSRF("abc") || s.ValidCSRF("") || s.ValidCSRF("abd") || (Session{}).ValidCSRF("") {
		t.Fatal("CSRF comparison is wrong")
	}
}

// consoleClient is a browser-like client of the console over httptest: it keeps cookies.
type consoleClient struct {
	t   *testing.T
	h   http.Handler
	jar map[string]*http.Cookie
}

func (c *consoleClient) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	c.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, ck := range c.jar {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.jar, ck.Name)
		} else {
			c.jar[ck.Name] = ck
		}
	}
	return rec
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) signIn(login, password string) *httptest.ResponseRecorder {
	c.t.Helper()
	page := c.do("GET", "/console/login", nil)
	m := csrfRE.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || m == nil {
		c.t.Fatalf("login page: %d %s", page.Code, page.Body)
	}
	return c.do("POST", "/console/login", url.Values{"csrf": {m[1]}, "login": {login}, "password": {password}, "next": {"/console/tasks"}})
}

func newConsole(t *testing.T) (*Server, *StaffStore, *clock, func() *consoleClient) {
	t.Helper()
	s, _ := newTestServer()
	st, c, db := newStaffStore(t)
	s.Staff, s.DB, s.Owners = st, db, "owners"
	h := s.Handler()
	return s, st, c, func() *consoleClient { return &consoleClient{t: t, h: h, jar: map[string]*http.Cookie{}} }
}

func TestConsoleSignInCookieAndLoginCSRF(t *testing.T) {
	_, st, _, client := newConsole(t)
	if _, err := st.Create(context.Background(), "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	b := client()
	if rec := b.do("GET", "/console/tasks", nil); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/console/login") {
		t.Fatalf("tasks without a session: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// A sign-in form posted without the login page's token is refused.
	if rec := b.do("POST", "/console/login", url.Values{"login": {"anna"}, "password": {testPassword}}); rec.Code != http.StatusForbidden {
		t.Fatalf("sign-in without the form's token: %d", rec.Code)
	}
	if rec := b.signIn("anna", "wrong-password!"); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Неверный логин или пароль") {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	rec := b.signIn("anna", testPassword)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/tasks" {
		t.Fatalf("sign-in: %d %s %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	ck := b.jar[sessionCookie]
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.MaxAge != int(SessionTTL.Seconds()) {
		t.Fatalf("session cookie %+v", ck)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	// Under TLS the cookie is Secure.
	req := httptest.NewRequest("GET", "/console/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	if cks := w.Result().Cookies(); len(cks) != 1 || !cks[0].Secure {
		t.Fatalf("cookies under TLS: %+v", cks)
	}
}

func TestConsoleRefusesFormsWithoutCSRFAndOtherRolesAndTenants(t *testing.T) {
	_, st, c, client := newConsole(t)
	ctx := context.Background()
	for _, a := range []struct{ login, role, tenant string }{{"anna", RoleReviewer, ""}, {"boris", RoleReviewer, "bank-one"}} {
		if _, err := st.Create(ctx, a.login, a.role, a.tenant, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	caseID := "refund-00000000-0000-4000-8000-000000000001"
	if _, err := store.PutNew(ctx, st.DB, "owners", "case_id", caseOwner{CaseID: caseID, Tenant: "cabinet", CreatedBy: "cabinet"}); err != nil {
		t.Fatal(err)
	}
	anna := client()
	anna.signIn("anna", testPassword)
	// A decision without the session's CSRF token: refused before anything is read or sent.
	if rec := anna.do("POST", "/console/cases/"+caseID, url.Values{"action": {"approve"}}); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "CSRF") {
		t.Fatalf("POST without CSRF: %d %s", rec.Code, rec.Body)
	}
	if rec := anna.do("POST", "/console/cases/"+caseID, url.Values{"action": {"approve"}, "csrf": {"forged"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("POST with a forged CSRF token: %d", rec.Code)
	}
	// A cross-site POST is refused even with the token (Fetch metadata).
	req := httptest.NewRequest("POST", "/console/cases/"+caseID, strings.NewReader("action=approve"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	anna.h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", w.Code)
	}
	// A reviewer opening an inspector's page.
	if rec := anna.do("GET", "/console/cases/declaration-00000000-0000-4000-8000-000000000001", nil); rec.Code != http.StatusForbidden {
		t.Fatalf("reviewer on a declaration: %d", rec.Code)
	}
	// A staff member bound to another tenant: the case does not exist for it.
	boris := client()
	boris.signIn("boris", testPassword)
	if rec := boris.do("GET", "/console/cases/"+caseID, nil); rec.Code != http.StatusNotFound {
		t.Fatalf("other tenant's case: %d", rec.Code)
	}
	// An expired session: a page sends to sign-in, a form is refused and does nothing.
	c.t = c.t.Add(SessionTTL + time.Minute)
	if rec := anna.do("GET", "/console/cases/"+caseID, nil); rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "expired=1") {
		t.Fatalf("expired session GET: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if rec := anna.do("POST", "/console/cases/"+caseID, url.Values{"action": {"approve"}}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("expired session POST: %d", rec.Code)
	}
}

func TestConsoleSignOutEndsTheSession(t *testing.T) {
	_, st, _, client := newConsole(t)
	if _, err := st.Create(context.Background(), "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	b := client()
	b.signIn("anna", testPassword)
	old := *b.jar[sessionCookie]
	page := b.do("GET", "/console/cases/declaration-x", nil) // 403 page carries the layout's sign-out form
	m := csrfRE.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no sign-out form: %s", page.Body)
	}
	if rec := b.do("POST", "/console/logout", url.Values{"csrf": {m[1]}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", rec.Code)
	}
	b.jar[sessionCookie] = &old // a copy of the old cookie is worth nothing now
	if rec := b.do("GET", "/console/tasks", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: %d", rec.Code)
	}
}

func TestConsoleEscapesHTMLInMessages(t *testing.T) {
	s, _ := newTestServer()
	rec := httptest.NewRecorder()
	s.render(rec, http.StatusOK, "message", layoutData{Title: "t", Message: "<script>alert(1)</script>", Detail: `"><img src=x>`})
	if body := rec.Body.String(); strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x>") {
		t.Fatalf("unescaped: %s", body)
	}
}

func TestMaskMoneyRoublesAndCountdown(t *testing.T) {
	if got := MaskINN("500100732259"); got != "50••••••2259" {
		t.Errorf("MaskINN = %q", got)
	}
	if got := MaskINN("7707083893"); got != "77••••3893" {
		t.Errorf("MaskINN 10 = %q", got)
	}
	if got := money(123456789); got != "1\u00a0234\u00a0567,89\u00a0₽" {
		t.Errorf("money = %q", got)
	}
	if k, err := parseRoubles("12 345,6"); err != nil || k != 1234560 {
		t.Errorf("parseRoubles = %d %v", k, err)
	}
	if _, err := parseRoubles("1,234"); err == nil {
		t.Error("three decimals accepted")
	}
	cal := calendar.Shared()
	// Friday 2026-03-06 10:00 Moscow; due Tuesday 2026-03-10 24:00: Monday 9 is the day
	// off for 8 March (a Sunday), so 1 working day is left of 4 calendar days.
	now := time.Date(2026, 3, 6, 10, 0, 0, 0, calendar.Moscow)
	due := time.Date(2026, 3, 11, 0, 0, 0, 0, calendar.Moscow)
	if got, over := countdown(now, due, "working_days", cal); got != "осталось 1 раб. дн." || over {
		t.Errorf("working days: %q %v", got, over)
	}
	if got, over := countdown(now, due, "days", cal); got != "осталось 4 дн." || over {
		t.Errorf("calendar days: %q %v", got, over)
	}
	if got, over := countdown(due.Add(49*time.Hour), due, "days", cal); got != "просрочено на 2 дн." || !over {
		t.Errorf("overdue: %q %v", got, over)
	}
	if got, over := countdown(due.Add(-3*time.Hour), due, "hours", cal); got != "осталось 3 ч" || over {
		t.Errorf("hours: %q %v", got, over)
	}
}

// Guesses sent in parallel are each counted: they cannot all read the same count.
func TestParallelWrongPasswordsLockTheAccount(t *testing.T) {
	st, _, _ := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 * MaxPasswordFailures {
		wg.Go(func() { _, _, _ = st.SignIn(ctx, "anna", "a-wrong-guess!") })
	}
	wg.Wait()
	if _, _, err := st.SignIn(ctx, "anna", testPassword); !errors.Is(err, ErrStaffLocked) {
		t.Fatalf("after %d parallel guesses: %v, want locked", 3*MaxPasswordFailures, err)
	}
}

// slowStaffReads delays every read, so that many guesses are in flight at once.
type slowStaffReads struct{ *storetest.DB }

func (s slowStaffReads) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	time.Sleep(5 * time.Millisecond)
	return s.DB.GetItem(ctx, in, o...)
}

// A burst of guesses checks at most MaxPasswordFailures passwords: the attempt is counted
// before the password is, under the cap. The right password sent after the burst is
// refused while locked, and accepted once the lock has ended.
func TestBurstOfGuessesChecksAtMostFivePasswords(t *testing.T) {
	st, c, db := newStaffStore(t)
	st.DB = slowStaffReads{db}
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	var wrong, locked atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			switch _, _, err := st.SignIn(ctx, "anna", "a-wrong-guess!"); {
			case errors.Is(err, ErrBadCredentials):
				wrong.Add(1)
			case errors.Is(err, ErrStaffLocked):
				locked.Add(1)
			default:
				t.Errorf("guess: %v", err)
			}
		})
	}
	wg.Wait()
	if wrong.Load() > MaxPasswordFailures-1 || wrong.Load()+locked.Load() != 30 {
		t.Fatalf("%d guesses judged wrong, %d refused as locked: more than %d passwords were checked", wrong.Load(), locked.Load(), MaxPasswordFailures)
	}
	if _, _, err := st.SignIn(ctx, "anna", testPassword); !errors.Is(err, ErrStaffLocked) {
		t.Fatalf("the right password during the lock: %v", err)
	}
	c.t = c.t.Add(StaffLockout + time.Second)
	if _, _, err := st.SignIn(ctx, "anna", testPassword); err != nil {
		t.Fatalf("the right password after the lock: %v", err)
	}
}

// A batch's page is for operators, of their tenant when they are bound to one; its counts
// and refusal are shown escaped.
func TestConsoleBatchPageAccessAndRendering(t *testing.T) {
	s, st, _, client := newConsole(t)
	ctx := context.Background()
	for _, c := range []struct{ login, role, tenant string }{{"rita", RoleReviewer, ""}, {"oleg", RoleOperator, "beta"}} {
		if _, err := st.Create(ctx, c.login, c.role, c.tenant, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	id := "batch-" + strings.Repeat("ab", 16)
	if _, err := store.PutNew(ctx, s.DB, s.Owners, "case_id", caseOwner{CaseID: id, Tenant: "alpha", CreatedBy: "alpha/batch"}); err != nil {
		t.Fatal(err)
	}
	rita := client()
	rita.signIn("rita", testPassword)
	if rec := rita.do("GET", "/console/batches/"+id, nil); rec.Code != http.StatusForbidden {
		t.Fatalf("a reviewer opening a batch: %d", rec.Code)
	}
	oleg := client()
	oleg.signIn("oleg", testPassword)
	for _, path := range []string{"/console/batches/" + id, "/console/batches/batch-nope"} {
		if rec := oleg.do("GET", path, nil); rec.Code != http.StatusNotFound {
			t.Fatalf("%s by another tenant's operator: %d", path, rec.Code)
		}
	}
	var out strings.Builder
	rec := httptest.NewRecorder()
	s.render(rec, http.StatusOK, "batch", batchData{ID: id, Percent: 50, Progress: workflows.BatchProgress{Status: "running", Chunks: 4, ChunksDone: 2,
		Counts: contract.BatchCounts{Lines: 1000, Created: 480, Errors: 20}, Refusal: &contract.BatchRefusal{Reason: "<script>x</script>"}}})
	out.WriteString(rec.Body.String())
	for _, want := range []string{"2 из 4", "(50 %)", "<td>480</td>", "<td>20</td>", "&lt;script&gt;"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("batch page lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "<script>x") {
		t.Error("a refusal's text is not escaped")
	}
}

// Every console route the mux serves is in ConsoleRoutes (the metrics' closed set of
// route labels), and every listed one is served.
func TestConsoleRoutesAreListed(t *testing.T) {
	s, _ := newTestServer()
	s.Staff = &StaffStore{}
	mux := http.NewServeMux()
	s.mountConsole(mux)
	served := map[string]bool{}
	for _, p := range consoleRoutes {
		method, path, _ := strings.Cut(p, " ")
		path = strings.NewReplacer("{id}", "refund-x", "{$}", "").Replace(path)
		if strings.HasSuffix(path, "/static/") {
			path += "style.css"
		}
		_, pattern := mux.Handler(httptest.NewRequest(method, path, nil))
		if pattern != p {
			t.Errorf("%s %s is served by %q, listed as %q", method, path, pattern, p)
		}
		served[pattern] = true
	}
	if len(served) != len(consoleRoutes) || !slices.Equal(ConsoleRoutes(), consoleRoutes) {
		t.Fatalf("listed %d, served %d", len(consoleRoutes), len(served))
	}
}
