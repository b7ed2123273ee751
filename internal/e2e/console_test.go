//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/workflows"
)

// browser starts headless Chromium for the test. A machine without it skips the test,
// unless CI is set: `make test-setup` installs it there, so its absence is a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("TAXFLOW_CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium: `make test-setup` installs it (apt-get install chromium)")
		}
		t.Skip("no Chromium on this machine: `make test-setup` installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first action starts the browser, on a context without a timeout (it would stop
	// the browser); the test's actions run on one with a bound.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	bounded, cancel := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	return bounded
}

// shotDir is where screenshots go: the test's artifact directory (go test -artifacts
// keeps it), or TAXFLOW_SCREENSHOTS (how the README's picture is made).
func shotDir(t *testing.T) string {
	if d := os.Getenv("TAXFLOW_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(shotDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
}

func signIn(t *testing.T, ctx context.Context, base, login, password string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("login"), login),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("who")),
	); err != nil {
		t.Fatalf("sign in as %s: %v", login, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		t.Fatalf("wait for %s: %v", sel, err)
	}
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// sessionGet fetches a console page with the browser's cookies, for the status code.
func sessionGet(t *testing.T, ctx context.Context, rawURL string, form url.Values) (int, string) {
	t.Helper()
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{rawURL}})
		return res.Cookies, err
	})
	if err != nil {
		t.Fatal(err)
	}
	method, body := "GET", io.Reader(nil)
	if form != nil {
		method, body = "POST", strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, rawURL, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The staff console in a real browser: a reviewer signs in, finds the refund in the task
// list, opens it, is refused a form without its CSRF token, approves it and sees the
// status change; a second submission decides nothing; a reviewer cannot open an
// inspector's page (403), a staff member of another tenant cannot see the case (404).
func TestConsoleReviewerApprovesRefundInBrowser(t *testing.T) {
	ctx := browser(t)
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	ik, err := keys.Create(context.Background(), api.Principal{ID: "e2e-console", Tenant: "e2e-console", Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	integrator := &apiClient{t, base + "|" + ik}

	staff := api.StaffAccounts(shared.cfg, shared.clients)
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	reviewer, other := "rev-"+suffix, "other-"+suffix
	const password = "console-e2e-password"
	if _, err := staff.Create(context.Background(), reviewer, api.RoleReviewer, "", password); err != nil {
		t.Fatal(err)
	}
	if _, err := staff.Create(context.Background(), other, api.RoleReviewer, "other-tenant", password); err != nil {
		t.Fatal(err)
	}

	inn := newTaxpayer(t, 3_000_000)
	code, id := integrator.create(inn, 2_500_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	integrator.waitStatus(id, workflows.RefundAwaitingInfo)
	if code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, out)
	}
	integrator.waitStatus(id, workflows.RefundInReview)

	signIn(t, ctx, base, reviewer, password)
	// The task list: find the case (a shared stack may list other tests' cases first).
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/tasks?process=refund")); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`tr[data-case="%s"]`, id)
	for page := 0; ; page++ {
		if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
			t.Fatal(err)
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector('%s') !== null`, row)))
		if err != nil {
			t.Fatal(err)
		}
		if found {
			break
		}
		hasNext, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('a[rel=next]') !== null`))
		if err != nil || !hasNext || page > 30 {
			t.Fatalf("case %s not in the reviewer's task list (%v)", id, err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[rel=next]`))); err != nil {
			t.Fatal(err)
		}
	}
	if got := text(t, ctx, row); !strings.Contains(got, "На проверке") || !strings.Contains(got, "in_review") || !strings.Contains(got, "осталось") {
		t.Fatalf("task row %q: want the Russian and English status and the SLA countdown", got)
	}
	screenshot(t, ctx, "console-tasks.png")

	// The case page: masked INN, amounts, the document's presigned link, the journal.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(chromedp.ID("decision"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#inn"); got != inn[:2]+"••••••"+inn[8:] {
		t.Fatalf("INN shown as %q, want it masked", got)
	}
	if got := text(t, ctx, "#amounts"); !strings.Contains(got, "25\u00a0000,00\u00a0₽") || !strings.Contains(got, "30\u00a0000,00\u00a0₽") {
		t.Fatalf("amounts %q: want claimed 25 000,00 ₽ and refundable 30 000,00 ₽", got)
	}
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#documents a"), "href"))
	href := attr.Value
	if err != nil || !attr.Exists || !strings.Contains(href, "X-Amz-Signature=") {
		t.Fatalf("document link %q %v: want a presigned S3 URL", href, err)
	}
	if resp, err := http.Get(href); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned document: %v %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	csrf, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#decision input[name=csrf]`)))
	if err != nil || csrf == "" {
		t.Fatalf("no CSRF token in the form: %v", err)
	}
	screenshot(t, ctx, "console-case.png")

	// The form without its CSRF token: refused, nothing decided.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector('#decision input[name=csrf]').remove(), true)`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.ID("message"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#message"); !strings.Contains(got, "CSRF") {
		t.Fatalf("form without CSRF: %q", got)
	}
	if st := integrator.status(id); st.Status != workflows.RefundInReview {
		t.Fatalf("a form without CSRF changed the case: %s", st.Status)
	}

	// A rejection without a reason: the case's validator refuses it; its error is shown
	// next to the field and nothing changes.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/cases/"+id),
		chromedp.WaitVisible(chromedp.ID("decision")),
		chromedp.Click(chromedp.ID("reject"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#decision #error-reason"); !strings.Contains(got, "rejection must give the reason") {
		t.Fatalf("validator error next to the reason: %q", got)
	}
	if st := integrator.status(id); st.Status != workflows.RefundInReview {
		t.Fatalf("a refused rejection changed the case: %s", st.Status)
	}

	// Approve, with HTML in the reason: the status changes; the reason is shown as text.
	reason := `<b>statement</b> <script>alert(1)</script> confirms it`
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("decision")),
		chromedp.SendKeys(chromedp.ID("reason"), reason),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.ID("done"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#status"); !strings.Contains(got, workflows.RefundApproved) && !strings.Contains(got, workflows.RefundPaid) {
		t.Fatalf("status after approval %q: want approved or paid", got)
	}
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#timeline script, #timeline b').length`))
	if err != nil || scripts != 0 {
		t.Fatalf("HTML of the reason became elements: %d %v", scripts, err)
	}
	if got := text(t, ctx, "#timeline"); !strings.Contains(got, "<script>alert(1)</script>") || !strings.Contains(got, "person:"+reviewer) {
		t.Fatalf("timeline %q: want the reason as text and the staff person", got)
	}

	// The same form again (double submit): the current state, nothing decided twice.
	code2, body := sessionGet(t, ctx, base+"/console/cases/"+id, url.Values{"csrf": {csrf}, "action": {"approve"}, "reason": {"again"}})
	if code2 != http.StatusConflict || !strings.Contains(body, "ничего не изменено") ||
		(!strings.Contains(body, "(approved)") && !strings.Contains(body, "(paid)")) {
		t.Fatalf("second submission: %d %s", code2, body)
	}
	st := integrator.waitStatus(id, workflows.RefundPaid)
	if st.Paid != 2_500_000 || st.DecidedBy != "person:"+reviewer {
		t.Fatalf("paid %d decided by %q", st.Paid, st.DecidedBy)
	}
	entries, err := audit.Journal(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	approvals := 0
	for _, e := range entries {
		if e.To == workflows.RefundApproved {
			approvals++
			if e.Actor != "person:"+reviewer {
				t.Fatalf("approval journaled by %q", e.Actor)
			}
		}
	}
	if approvals != 1 {
		t.Fatalf("%d approvals journaled, want 1", approvals)
	}

	// A reviewer on an inspector's page.
	if code, _ := sessionGet(t, ctx, base+"/console/cases/declaration-"+uuid.NewString(), nil); code != http.StatusForbidden {
		t.Fatalf("reviewer on a declaration page: %d, want 403", code)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/cases/declaration-"+uuid.NewString())); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#message"); !strings.Contains(got, "Нет доступа") {
		t.Fatalf("reviewer on a declaration page shows %q", got)
	}

	// Sign out; a staff member of another tenant does not see the case.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`header form button`)), chromedp.WaitVisible(chromedp.ID("login-form"))); err != nil {
		t.Fatal(err)
	}
	if code, _ := sessionGet(t, ctx, base+"/console/tasks", nil); code != http.StatusSeeOther {
		t.Fatalf("tasks after sign-out: %d, want a redirect to sign-in", code)
	}
	signIn(t, ctx, base, other, password)
	if code, _ := sessionGet(t, ctx, base+"/console/cases/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("another tenant's case: %d, want 404", code)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/cases/"+id)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#message"); !strings.Contains(got, "Дело не найдено") {
		t.Fatalf("another tenant's case shows %q", got)
	}
}
