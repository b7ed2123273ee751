// Package demo walks every process of taxflow through the HTTP API, as an integrator and
// the staff would, one file per process. Each step prints one line; the end prints a
// summary table and where to look next. `taxflow dev` and `taxflow demo` run it against
// the worker and the API they started (Run), with the keys CreateKeys made.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/stack"
)

// Keys are the API keys of the demo's principals, one per role.
type Keys struct {
	Integrator, Auth, Reviewer, Inspector, Operator, Specialist string
	// Staff are the console's sign-ins, one per staff role; Password is empty when the
	// account existed already (its password was shown when it was made).
	Staff []Staff
}

// Staff is one console sign-in.
type Staff struct{ Login, Role, Password string }

// createDemoStaff makes one console account per staff role, with a random password.
func createDemoStaff(ctx context.Context, cfg config.Config, clients *awsclient.Clients) ([]Staff, error) {
	var out []Staff
	for _, role := range []string{api.RoleReviewer, api.RoleInspector, api.RoleSpecialist, api.RoleOperator} {
		pw, err := api.NewPassword()
		if err != nil {
			return nil, err
		}
		login := "demo-" + role
		if _, err := api.StaffAccounts(cfg, clients).Create(ctx, login, role, "", pw); errors.Is(err, api.ErrStaffExists) {
			pw = ""
		} else if err != nil {
			return nil, fmt.Errorf("create the %s staff account: %w", role, err)
		}
		out = append(out, Staff{Login: login, Role: role, Password: pw})
	}
	return out, nil
}

// demoPrincipals: the cabinet (an integrator tenant) with its authentication system, and
// the tax office's staff, one key per role, each with its role's scopes.
var demoPrincipals = []struct {
	id, tenant, role, what string
	key                    func(*Keys) *string
}{
	{"demo-cabinet", seed.CabinetTenant, api.RoleIntegrator, "integrator (the cabinet)", func(k *Keys) *string { return &k.Integrator }},
	{"demo-auth", seed.CabinetTenant, api.RoleAuthSystem, "authentication system", func(k *Keys) *string { return &k.Auth }},
	{"demo-reviewer", "tax-office", api.RoleReviewer, "refund and identity reviewer", func(k *Keys) *string { return &k.Reviewer }},
	{"demo-inspector", "tax-office", api.RoleInspector, "declaration inspector", func(k *Keys) *string { return &k.Inspector }},
	{"demo-operator", "tax-office", api.RoleOperator, "operator", func(k *Keys) *string { return &k.Operator }},
	{"demo-specialist", "tax-office", api.RoleSpecialist, "unblock specialist", func(k *Keys) *string { return &k.Specialist }},
}

// CreateKeys makes the demo's API keys, one per principal, and its console accounts.
func CreateKeys(ctx context.Context, cfg config.Config, clients *awsclient.Clients) (Keys, error) {
	var k Keys
	keys := api.Keys(cfg, clients)
	for _, p := range demoPrincipals {
		pr := api.Principal{ID: p.id, Tenant: p.tenant, Role: p.role}
		if pr.Staff() {
			pr.Person = p.id // one person per staff key of the demo
		}
		key, err := keys.Create(ctx, pr)
		if err != nil {
			return k, fmt.Errorf("create the %s key: %w", p.what, err)
		}
		*p.key(&k) = key
	}
	staff, err := createDemoStaff(ctx, cfg, clients)
	k.Staff = staff
	return k, err
}

// demo is one walk through the processes.
type demo struct {
	ctx     context.Context
	cfg     config.Config
	clients *awsclient.Clients
	c       client.Client
	srv     *api.Server // for the opaque subject of an INN (account case ids)
	base    string
	d       seed.Dataset
	keys    Keys
	out     io.Writer
	http    *http.Client
	dir     string // the stack's run directory
}

// outcome is how one process ended; step is the step that failed.
type outcome struct {
	process, caseID, status, label, want string
	step                                 string
	err                                  error
}

func (o outcome) ok() bool { return o.err == nil && o.status == o.want }

// walk tracks one process: its case, its last status, its current step.
type walk struct {
	m *demo
	o outcome
}

func (m *demo) begin(process, want string) *walk {
	return &walk{m: m, o: outcome{process: process, want: want}}
}

func (w *walk) step(name string) { w.o.step = name }

// show prints one line: process, case, status (English code and Russian label), detail.
func (w *walk) show(status, label, detail string) {
	w.o.status, w.o.label = status, label
	w.m.printf("  %-11s %-48s %-22s «%s»  %s\n", w.o.process, w.o.caseID, status, label, detail)
}

// printf writes a line of the demo's console output. A failed write to the terminal is not
// worth stopping the demo for (nothing else could be shown either), so its error is dropped.
func (m *demo) printf(format string, args ...any) { _, _ = fmt.Fprintf(m.out, format, args...) }

func (w *walk) fail(err error) outcome {
	w.o.err = fmt.Errorf("%s: %s: %w", w.o.process, w.o.step, err)
	w.m.printf("  %-11s %-48s FAILED at %q: %v\n", w.o.process, w.o.caseID, w.o.step, err)
	return w.o
}

// expect sends one request with a key; it wants one status code and decodes the answer
// into out (if not nil).
func (m *demo) expect(want int, out any, method, path, key string, body []byte, headers ...string) error {
	return drive.Expect(m.ctx, m.http, m.base, want, out, method, path, key, body, headers...)
}

// demoWait bounds every wait for a process to move.
const demoWait = 90 * time.Second

// poll reads until done says so, for at most demoWait; on failure it says what it waited
// for and what it saw last.
func poll[T any](m *demo, what string, read func() (T, error), done func(T) bool, describe func(T) string) (T, error) {
	deadline := time.Now().Add(demoWait)
	for {
		v, err := read()
		if err == nil && done(v) {
			return v, nil
		}
		if m.ctx.Err() != nil {
			return v, m.ctx.Err()
		}
		if time.Now().After(deadline) {
			if err != nil {
				return v, fmt.Errorf("waited %s for %s: %w", demoWait, what, err)
			}
			return v, fmt.Errorf("waited %s for %s; last seen: %s", demoWait, what, describe(v))
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// waitTask waits until a case is in a role's task list, as the staff find their work.
func (m *demo) waitTask(role, key, caseID string) error {
	_, err := poll(m, caseID+" in the "+role+"'s task list", func() ([]api.Task, error) {
		var list struct {
			Tasks []api.Task `json:"tasks"`
		}
		err := m.expect(http.StatusOK, &list, "GET", "/v1/tasks?role="+role, key, nil)
		return list.Tasks, err
	}, func(ts []api.Task) bool {
		for _, t := range ts {
			if t.CaseID == caseID {
				return true
			}
		}
		return false
	}, func(ts []api.Task) string { return fmt.Sprintf("%d other tasks", len(ts)) })
	return err
}

// Options are what a walk needs: the command's configuration and AWS clients, a Temporal
// client of the namespace whose worker runs the processes, the local stack (its run
// directory and ports, for where to look next), the dataset loaded and the keys CreateKeys
// made. The API the demo calls is the one at Config.APIAddr.
type Options struct {
	Config   config.Config
	Clients  *awsclient.Clients
	Temporal client.Client
	Stack    stack.Stack
	Data     seed.Dataset
	Keys     Keys
	Out      io.Writer // the console; os.Stdout when nil
}

// check names every part of the options a walk cannot go without.
func (o Options) check() error {
	var missing []string
	if o.Clients == nil {
		missing = append(missing, "Clients (the AWS clients)")
	}
	if o.Temporal == nil {
		missing = append(missing, "Temporal (a client of the worker's namespace)")
	}
	if o.Config.APIAddr == "" {
		missing = append(missing, "Config.APIAddr (the API the demo calls)")
	}
	if len(o.Data.Taxpayers) == 0 || len(o.Data.Periods) == 0 {
		missing = append(missing, "Data (the dataset loaded: no taxpayers or periods)")
	}
	if o.Keys.Integrator == "" {
		missing = append(missing, "Keys (made by CreateKeys)")
	}
	if o.Stack.Dir == "" {
		missing = append(missing, "Stack (the local stack's run directory)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo: missing %s", strings.Join(missing, "; "))
	}
	return nil
}

// Report is how each process of a walk ended.
type Report struct{ outcomes []outcome }

// Err names every process that did not reach its end, and the step where it stopped; nil
// when each did.
func (r Report) Err() error { return demoError(r.outcomes) }

// Run walks every process, prints the summary and where to look, and reports how each
// process ended. It refuses incomplete options before it calls anything.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.check(); err != nil {
		return Report{}, err
	}
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	m := &demo{ctx: ctx, cfg: o.Config, clients: o.Clients, c: o.Temporal, srv: api.New(o.Config, o.Clients, o.Temporal, zerolog.Nop()),
		base: "http://" + o.Config.APIAddr, d: o.Data, keys: o.Keys, out: out, http: &http.Client{Timeout: 60 * time.Second}, dir: o.Stack.Dir}
	return Report{outcomes: m.run(o.Stack)}, nil
}

// run walks every process, prints the summary and where to look, and returns each
// process's outcome.
func (m *demo) run(s stack.Stack) []outcome {
	ctx, d := m.ctx, m.d
	start := time.Now()
	m.printf("\ndemo: every process through the HTTP API (reference day %s, tax period %d)\n", d.Today.Format(time.DateOnly), d.LastPeriod)
	if err := waitHealthy(ctx, m.base+"/readyz"); err != nil {
		return []outcome{{process: "api", step: "wait for the API", err: err}}
	}
	var results []outcome
	hook, err := m.registerWebhook()
	if err != nil {
		return []outcome{{process: "webhooks", step: "register the webhook endpoint", err: err}}
	}
	for _, process := range []func() outcome{m.refund, m.identity, m.declaration, m.account, m.reminder} {
		if ctx.Err() != nil {
			break
		}
		results = append(results, process())
	}
	if ctx.Err() == nil {
		results = append(results, m.webhooks(hook, results))
	} else {
		hook.rcv.Close()
	}
	m.summary(results, time.Since(start))
	m.whereToLook(s, results)
	return results
}

// summary prints the table of outcomes.
func (m *demo) summary(results []outcome, took time.Duration) {
	m.printf("\nsummary (%s)\n", took.Round(100*time.Millisecond))
	m.printf("  %-11s %-48s %-24s %-34s %s\n", "process", "case", "status", "label", "result")
	for _, o := range results {
		result := "OK"
		if !o.ok() {
			if o.err == nil {
				result = fmt.Sprintf("FAILED: ended %s, want %s", o.status, o.want)
			} else {
				result = fmt.Sprintf("FAILED at %q", o.step)
			}
		}
		m.printf("  %-11s %-48s %-24s %-34s %s\n", o.process, o.caseID, o.status, "«"+o.label+"»", result)
	}
}

func (m *demo) whereToLook(s stack.Stack, results []outcome) {
	example := "/v1/refunds/<case>/journal"
	for _, o := range results {
		if o.process == "refund" && o.caseID != "" {
			example = "/v1/refunds/" + o.caseID + "/journal"
		}
	}
	m.printf("\nwhere to look next\n")
	m.printf("  API          %s   (OpenAPI: %s/openapi.yaml)\n", m.base, m.base)
	m.printf("               curl -s -H 'Authorization: Bearer %s' %s%s\n", m.keys.Integrator, m.base, example)
	m.printf("  Temporal UI  http://127.0.0.1:%d/namespaces/%s/workflows   (Temporal %s)\n", s.Ports.TemporalUI, m.cfg.Temporal.Namespace, m.cfg.Temporal.Address)
	m.printf("  S3 console   http://127.0.0.1:%d   user %s, password %s, bucket %s\n", s.Ports.S3Console, stack.AccessKey, stack.SecretKey, m.cfg.Name(document.Bucket))
	m.printf("  logs, data   %s\n", s.Dir)
	m.printf("API keys of this data (shown once; stored only as hashes):\n")
	for _, p := range demoPrincipals {
		m.printf("  %-26s %s\n", p.what, *p.key(&m.keys))
	}
	m.printf("Staff console  %s/console   sign in as (passwords shown once; stored only as bcrypt hashes):\n", m.base)
	for _, st := range m.keys.Staff {
		pw := st.Password
		if pw == "" {
			pw = "(exists already: its password was shown when it was made)"
		}
		m.printf("  %-26s %-12s %s\n", st.Login, st.Role, pw)
	}
	m.printf("\n")
}

// demoError names every process that did not reach its end, and the step where it stopped.
func demoError(results []outcome) error {
	var errs []error
	for _, o := range results {
		switch {
		case o.err != nil:
			errs = append(errs, o.err)
		case !o.ok():
			errs = append(errs, fmt.Errorf("%s: ended %s, want %s", o.process, o.status, o.want))
		}
	}
	if len(results) < 6 && len(errs) == 0 {
		errs = append(errs, errors.New("interrupted before every process ran"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("demo failed: %w", errors.Join(errs...))
	}
	return nil
}

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close() // only the status is needed
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", url, ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within 30 s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newIdempotencyKey() string { return uuid.NewString() }
