package api

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/workflows"
)

// The staff console: server-rendered pages (html/template, embedded) for the human steps
// of every process. It signs staff in with a password (StaffStore), keeps a server-side
// session behind an HttpOnly, SameSite=Strict cookie, and refuses every form without the
// session's CSRF token. Its decisions go through the same Updates as the API (caseAction).

//go:embed console
var consoleFiles embed.FS

const (
	sessionCookie    = "taxflow_console"
	loginCSRFCookie  = "taxflow_console_login"
	consolePageSize  = 20
	consoleMaxTasks  = 500
	consoleQueryWait = 10 * time.Second
)

// consoleCaseRE: a case id; an account's is account-<subject>, and a subject is
// s<version>.<hex> (internal/subject), hence the dot.
var consoleCaseRE = regexp.MustCompile(`^(refund|identity|declaration|account)-[A-Za-z0-9._-]{1,100}$`)

// processLabels are the Russian names of the processes.
var processLabels = map[string]string{
	procRefund:  "Возврат переплаты",
	procIdent:   "Идентификация",
	procDecl:    "Декларация 3-НДФЛ",
	procAccount: "Разблокировка учётной записи",
}

// readScopes: the scope a role needs to open a case page of a process.
var readScopes = map[string]string{
	procRefund:  ScopeRefundsRead,
	procIdent:   ScopeIdentityRead,
	procDecl:    ScopeDeclarationsRead,
	procAccount: ScopeAccountRead,
}

var consoleTemplates = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"statusLabel":  statusLabel,
		"processLabel": func(p string) string { return processLabels[p] },
		"money":        money,
		"fieldErr": func(d caseData, name string) fieldErrData {
			return fieldErrData{Err: d.Err, Name: name}
		},
		"when": func(t time.Time) string { return t.In(calendar.Moscow).Format("02.01.2006 15:04") },
		"whenp": func(t *time.Time) string { // a term: its end at midnight is 24:00 of its last day
			if t == nil {
				return ""
			}
			m := t.In(calendar.Moscow)
			if m.Hour() == 0 && m.Minute() == 0 && m.Second() == 0 {
				return m.Add(-time.Minute).Format("02.01.2006") + " 24:00"
			}
			return m.Format("02.01.2006 15:04")
		},
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"login", "tasks", "case", "message", "batch", "webhooks"} {
		out[page] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(consoleFiles, "console/layout.html", "console/"+page+".html"))
	}
	return out
}()

// statusLabel is the Russian label of a status of a process, "" when it has none.
func statusLabel(process, status string) string {
	m := map[string]map[string]string{procRefund: workflows.RefundLabels, procIdent: workflows.IdentityLabels,
		procDecl: workflows.DeclarationLabels, procAccount: workflows.AccountLabels}[process]
	return m[status]
}

// money writes kopecks as roubles: 1 234 567,89 ₽.
func money(k int64) string {
	neg := k < 0
	if neg {
		k = -k
	}
	r := strconv.FormatInt(k/100, 10)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && (len(r)-i)%3 == 0 {
			b.WriteRune('\u00a0')
		}
		b.WriteRune(c)
	}
	s := fmt.Sprintf("%s,%02d\u00a0₽", b.String(), k%100)
	if neg {
		s = "−" + s
	}
	return s
}

// MaskINN keeps the first two and the last four digits of an INN: 50••••••6843.
func MaskINN(inn string) string {
	if len(inn) < 8 {
		return strings.Repeat("•", len(inn))
	}
	return inn[:2] + strings.Repeat("•", len(inn)-6) + inn[len(inn)-4:]
}

// consoleRoutes are the console's route patterns: the metrics' closed set of route labels
// takes them with Routes() (ConsoleRoutes).
var consoleRoutes = []string{"GET /console/static/", "GET /console", "GET /console/{$}", "GET /console/login", "POST /console/login",
	"POST /console/logout", "GET /console/tasks", "GET /console/cases/{id}", "GET /console/batches/{id}", "POST /console/cases/{id}"}

// ConsoleRoutes lists the console's route patterns (not in the OpenAPI description: pages,
// not API).
func ConsoleRoutes() []string { return slices.Clone(consoleRoutes) }

// mountConsole adds the console's routes to the mux.
func (s *Server) mountConsole(mux *http.ServeMux) {
	static, _ := fs.Sub(consoleFiles, "console/static")
	page := func(h http.HandlerFunc) http.Handler { return consoleHeaders(limitBody(JSONBodyLimit, h)) }
	// Cross-origin POSTs are refused before the CSRF token is looked at (Fetch metadata).
	post := func(h http.HandlerFunc) http.Handler {
		return page(http.NewCrossOriginProtection().Handler(h).ServeHTTP)
	}
	for _, r := range []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /console/static/", consoleHeaders(http.StripPrefix("/console/static/", http.FileServerFS(static)))},
		{"GET /console", http.RedirectHandler("/console/tasks", http.StatusSeeOther)},
		{"GET /console/{$}", http.RedirectHandler("/console/tasks", http.StatusSeeOther)},
		{"GET /console/login", page(s.consoleLoginPage)},
		{"POST /console/login", post(s.consoleLogin)},
		{"POST /console/logout", post(s.withSession(s.consoleLogout))},
		{"GET /console/tasks", page(s.withSession(s.consoleTasks))},
		{"GET /console/cases/{id}", page(s.withSession(s.consoleCase))},
		{"GET /console/batches/{id}", page(s.withSession(s.consoleBatch))},
		{"GET /console/webhooks", page(s.withSession(s.consoleWebhooks))},
		{"POST /console/cases/{id}", post(s.withSession(s.consoleDecide))},
	} {
		mux.Handle(r.pattern, r.h) // each is in consoleRoutes (TestConsoleRoutesAreListed)
	}
}

// consoleHeaders replace the API's headers for pages: own styles only, no scripts, no
// framing, forms only to the console.
func consoleHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

func consoleSession(r *http.Request) Session {
	s, _ := r.Context().Value(sessionKey{}).(Session)
	return s
}

// withSession finds the signed-in staff member. Without a live session a page redirects
// to sign-in; a form is refused (401) and nothing is done. Every POST must carry the
// session's CSRF token (403 without it).
func (s *Server) withSession(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie(sessionCookie)
		var cookie string
		if c != nil {
			cookie = c.Value
		}
		sess, ok, err := s.Staff.Session(r.Context(), cookie)
		if err != nil {
			s.Log.Error().Err(err).Msg("console session lookup failed")
			s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Не удалось проверить сессию; повторите позже.")
			return
		}
		if !ok {
			if r.Method == http.MethodGet {
				to := "/console/login?next=" + url.QueryEscape(r.URL.RequestURI())
				if cookie != "" {
					to += "&expired=1"
				}
				http.Redirect(w, r, to, http.StatusSeeOther)
				return
			}
			s.consoleMessage(w, r, http.StatusUnauthorized, "Сессия истекла", "Войдите снова; форма не отправлена, ничего не изменено.")
			return
		}
		if r.Method == http.MethodPost && !sess.ValidCSRF(r.PostFormValue("csrf")) {
			s.consoleMessage(w, r, http.StatusForbidden, "Форма отклонена", "В форме нет действительного CSRF-токена. Обновите страницу и повторите.")
			return
		}
		p := sess.Account().Principal()
		if info, ok := r.Context().Value(logKey{}).(*logInfo); ok {
			info.principal = p
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, sess)
		next(w, r.WithContext(context.WithValue(ctx, principalKey{}, p)))
	}
}

func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
}

type layoutData struct {
	Title   string
	Staff   *StaffAccount
	CSRF    string
	Message string
	Detail  string
}

func (s *Server) render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := consoleTemplates[page].Execute(w, data); err != nil {
		s.Log.Error().Err(err).Str("page", page).Msg("render console page")
	}
}

func (s *Server) consoleMessage(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	d := layoutData{Title: title, Message: title, Detail: detail}
	if sess := consoleSession(r); sess.Login != "" {
		a := sess.Account()
		d.Staff, d.CSRF = &a, sess.CSRF
	}
	s.render(w, status, "message", d)
}

type loginData struct {
	layoutData
	Next, Login, Error string
	LoginCSRF          string
}

// safeNext keeps a redirect after sign-in inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/tasks"
	}
	return next
}

func (s *Server) consoleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next")),
		Error: map[bool]string{true: "Сессия истекла: войдите снова."}[r.URL.Query().Get("expired") == "1"]})
}

// loginForm renders the sign-in form with a fresh pre-session CSRF token (its copy in an
// HttpOnly cookie): a page elsewhere cannot sign a browser in to an account of its choice.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	token, err := randomToken()
	if err != nil {
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Повторите позже.")
		return
	}
	setCookie(w, r, loginCSRFCookie, token, 600)
	d.Title, d.LoginCSRF = "Вход для сотрудников", token
	s.render(w, status, "login", d)
}

func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request) {
	d := loginData{Next: safeNext(r.PostFormValue("next")), Login: r.PostFormValue("login")}
	c, _ := r.Cookie(loginCSRFCookie)
	if c == nil || c.Value == "" || !(Session{CSRF: c.Value}).ValidCSRF(r.PostFormValue("csrf")) {
		d.Error = "Форма устарела или отправлена не со страницы входа: повторите вход."
		s.loginForm(w, r, http.StatusForbidden, d)
		return
	}
	cookie, _, err := s.Staff.SignInFrom(r.Context(), d.Login, r.PostFormValue("password"), clientAddress(r))
	switch {
	case errors.Is(err, ErrBadCredentials), errors.Is(err, ErrStaffLocked):
		// One answer for both: a "locked" that only existing logins could get would tell
		// which logins exist.
		d.Error = fmt.Sprintf("Неверный логин или пароль, либо вход закрыт на %d минут после %d неверных паролей.", int(StaffLockout.Minutes()), MaxPasswordFailures)
		s.loginForm(w, r, http.StatusUnauthorized, d)
		return
	case err != nil:
		s.Log.Error().Err(err).Msg("console sign-in failed")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Вход не выполнен; повторите позже.")
		return
	}
	setCookie(w, r, loginCSRFCookie, "", -1)
	setCookie(w, r, sessionCookie, cookie, int(SessionTTL.Seconds()))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) consoleLogout(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Cookie(sessionCookie)
	if c != nil {
		if err := s.Staff.SignOut(r.Context(), c.Value); err != nil {
			s.Log.Error().Err(err).Msg("console sign-out failed")
		}
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// clientAddress is the caller's address as the server saw it (on Lambda, API Gateway's
// source IP): never a header a client can write, so no one can lock another's address.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// visible tells whether the staff member may see a case: the object rule of the table
// (checkCase): tax-office staff see every tenant's cases; an account bound to a tenant
// sees only that tenant's.
func (s *Server) visible(ctx context.Context, sess Session, id string) (bool, error) {
	err := s.checkCase(ctx, sess.Account().Principal(), id)
	if errors.Is(err, errNoObject) {
		return false, nil
	}
	return err == nil, err
}

type fieldErrData struct {
	Err  formError
	Name string
}

// consoleError answers a failed Update on a console form: ok is false when the error was
// not one the form can show (a message page has been written).
type formError struct {
	Field   string // the field the validator named, "" for the whole form
	Message string
	Status  int
	Current string // the case's current status, when it has moved on
}

// updateFormError turns the error of an Update into what the case page shows.
func (s *Server) updateFormError(ctx context.Context, id string, err error) formError {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		if _, derr := s.Temporal.DescribeWorkflowExecution(ctx, id, ""); derr == nil {
			fe := formError{Message: "Дело закрыто — решение не принято, ничего не изменено.", Status: http.StatusConflict}
			process, _, _ := strings.Cut(id, "-")
			if v, qerr := s.loadCase(ctx, id, process); qerr == nil {
				fe.Current = v.Status
			}
			return fe
		}
		return formError{Message: "Дело не найдено.", Status: http.StatusNotFound}
	}
	if late, ok := workflows.AsLate(err); ok {
		return formError{Message: "Дело уже перешло дальше — решение не принято повторно, ничего не изменено.", Status: http.StatusConflict, Current: late.Status}
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case fnerr.TypeConflict:
			return formError{Message: app.Message(), Status: http.StatusConflict}
		case fnerr.TypeInvalidInput:
			field, msg, found := strings.Cut(app.Message(), ": ")
			if !found || strings.ContainsAny(field, " ") {
				field, msg = "", app.Message()
			}
			return formError{Field: field, Message: msg, Status: http.StatusBadRequest}
		case "Rejected":
			return formError{Message: app.Message(), Status: http.StatusUnprocessableEntity}
		}
	}
	s.Log.Error().Err(err).Str("op", "console decision").Msg("request failed")
	return formError{Message: "Сервис не смог выполнить запрос; повторите позже.", Status: http.StatusServiceUnavailable}
}

// consoleDecide takes a decision form: the same Update as the API, with the staff
// principal; the result is the case page (303 after success, so a reload sends nothing).
func (s *Server) consoleDecide(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sess := consoleSession(r)
	process, ok := s.consoleCaseAccess(w, r, id)
	if !ok {
		return
	}
	a := caseAction{Process: process, Action: r.PostFormValue("action"), Reason: strings.TrimSpace(r.PostFormValue("reason")),
		What: strings.TrimSpace(r.PostFormValue("what")), Kind: r.PostFormValue("kind"), Decision: r.PostFormValue("decision")}
	p := sess.Account().Principal()
	name, arg, out, scope, err := a.update(p)
	if err != nil {
		s.consoleMessage(w, r, http.StatusBadRequest, "Неизвестное действие", "Это действие недоступно для дела этого процесса.")
		return
	}
	if !p.Can(scope) {
		s.consoleMessage(w, r, http.StatusForbidden, "Нет доступа", "Ваша роль не может принимать это решение.")
		return
	}
	fe := formError{Status: http.StatusBadRequest}
	switch {
	case utf8.RuneCountInString(a.Reason) > workflows.MaxReasonChars:
		fe.Field, fe.Message = "reason", fmt.Sprintf("не более %d символов", workflows.MaxReasonChars)
	case utf8.RuneCountInString(a.What) > workflows.MaxReasonChars:
		fe.Field, fe.Message = "what", fmt.Sprintf("не более %d символов", workflows.MaxReasonChars)
	}
	if v := r.PostFormValue("refund_roubles"); fe.Field == "" && v != "" {
		k, perr := parseRoubles(v)
		if perr != nil {
			fe.Field, fe.Message = "refund_kopecks", "сумма в рублях, например 12345,67"
		}
		a.RefundKopecks = k
		name, arg, out, _, _ = a.update(p)
	}
	if fe.Field == "" {
		// The same object rule and separation of duties as the API route the action
		// stands for (update found it, or the form was refused above).
		rt, _ := a.route()
		var duties errDuties
		switch oerr := s.checkObject(r.Context(), p, RuleStaff, rt.decides, id, ""); {
		case errors.As(oerr, &duties):
			s.consoleMessage(w, r, http.StatusForbidden, "Разделение обязанностей", "Создавший дело или его организация не может принимать по нему решение.")
			return
		case errors.Is(oerr, errNoObject):
			s.consoleMessage(w, r, http.StatusNotFound, "Дело не найдено", "Такого дела нет.")
			return
		case oerr != nil:
			// Fail closed: no owner known, no decision.
			s.Log.Error().Err(oerr).Msg("console: case owner unreadable")
			s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Решение не принято; повторите позже.")
			return
		}
		err = s.updateCase(r.Context(), id, name, arg, out)
		if err == nil {
			http.Redirect(w, r, "/console/cases/"+id+"?done="+url.QueryEscape(a.Action), http.StatusSeeOther)
			return
		}
		fe = s.updateFormError(r.Context(), id, err)
	}
	s.renderCase(w, r, id, process, fe, a)
}

// parseRoubles reads "12 345,67" or "12345.67" as kopecks.
func parseRoubles(v string) (int64, error) {
	v = strings.NewReplacer(" ", "", "\u00a0", "", ",", ".").Replace(strings.TrimSpace(v))
	whole, frac, _ := strings.Cut(v, ".")
	if len(frac) > 2 {
		return 0, errors.New("more than two decimals")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	r, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || r < 0 || r > MaxRefundKopecks/100 {
		return 0, errors.New("not a sum")
	}
	k, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || k < 0 {
		return 0, errors.New("not a sum")
	}
	return r*100 + k, nil
}

// consoleCaseAccess checks that the id is a case of a process the role may read (403
// otherwise) and of a tenant the account may see (404, as for a case that does not exist).
func (s *Server) consoleCaseAccess(w http.ResponseWriter, r *http.Request, id string) (process string, ok bool) {
	if !consoleCaseRE.MatchString(id) {
		s.consoleMessage(w, r, http.StatusNotFound, "Дело не найдено", "Такого дела нет.")
		return "", false
	}
	process, _, _ = strings.Cut(id, "-")
	sess := consoleSession(r)
	if !sess.Account().Principal().Can(readScopes[process]) {
		s.consoleMessage(w, r, http.StatusForbidden, "Нет доступа", "Дела этого процесса не видны вашей роли ("+sess.Role+").")
		return "", false
	}
	vis, err := s.visible(r.Context(), sess, id)
	if err != nil {
		s.Log.Error().Err(err).Msg("read case owner")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Повторите позже.")
		return "", false
	}
	if !vis {
		s.consoleMessage(w, r, http.StatusNotFound, "Дело не найдено", "Такого дела нет.")
		return "", false
	}
	return process, true
}

type batchData struct {
	layoutData
	ID        string
	Progress  workflows.BatchProgress
	Percent   int
	ReportURL string
}

// consoleBatch shows a batch's progress (the workflow's progress query) and, once it is
// written, a presigned link to its report. Operators see batches; staff bound to a
// tenant see only that tenant's, like its cases.
func (s *Server) consoleBatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sess := consoleSession(r)
	if !batchIDRE.MatchString(id) {
		s.consoleMessage(w, r, http.StatusNotFound, "Пакет не найден", "Такого пакета нет.")
		return
	}
	if !sess.Account().Principal().Can(ScopeOperate) {
		s.consoleMessage(w, r, http.StatusForbidden, "Нет доступа", "Пакеты видны операторам ("+sess.Role+").")
		return
	}
	vis, err := s.visible(r.Context(), sess, id)
	if err != nil {
		s.Log.Error().Err(err).Msg("read batch owner")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Повторите позже.")
		return
	}
	if !vis {
		s.consoleMessage(w, r, http.StatusNotFound, "Пакет не найден", "Такого пакета нет.")
		return
	}
	view, err := s.batchView(r.Context(), id)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		s.consoleMessage(w, r, http.StatusNotFound, "Пакет не найден", "Такого пакета нет.")
		return
	case err != nil:
		s.Log.Error().Err(err).Msg("read batch")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Повторите позже.")
		return
	}
	a := sess.Account()
	d := batchData{layoutData: layoutData{Title: "Пакет", Staff: &a, CSRF: sess.CSRF}, ID: id, Progress: view.BatchProgress, ReportURL: view.ReportURL}
	if view.Chunks > 0 {
		d.Percent = 100 * view.ChunksDone / view.Chunks
	}
	s.render(w, http.StatusOK, "batch", d)
}

func (s *Server) consoleCase(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	process, ok := s.consoleCaseAccess(w, r, id)
	if !ok {
		return
	}
	s.renderCase(w, r, id, process, formError{Status: http.StatusOK}, caseAction{})
}
