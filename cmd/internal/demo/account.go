package demo

import (
	"fmt"
	"net/http"

	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

// account walks a lock by failed logins and a self-service unblock: the authentication
// system reports the failed logins on record (as many as the threshold), then one more,
// the account locks, and the taxpayer unblocks it with INN, full name and passport series.
func (m *demo) account() outcome {
	w := m.begin("account", workflows.AccountActive)
	threshold := m.cfg.Account.Threshold
	read := func(inn string) func() (workflows.AccountStatus, error) {
		return func() (workflows.AccountStatus, error) {
			var st workflows.AccountStatus
			err := m.expect(http.StatusOK, &st, "GET", "/v1/accounts/"+inn+"/lock", m.keys.Auth, nil)
			return st, err
		}
	}
	describe := func(st workflows.AccountStatus) string {
		return fmt.Sprintf("%s, %d failures in a row, %d events", st.Status, st.Failures, st.EventsSeen)
	}

	w.step("find an account near the lock threshold")
	subj, before, err := m.accountSubject(read)
	if err != nil {
		return w.fail(err)
	}
	inn := subj.Taxpayer.INN
	// The same lookup as the API's: after a subject key rotation the account keeps its id.
	if w.o.caseID, _, err = m.srv.AccountID(m.ctx, inn); err != nil {
		return w.fail(err)
	}
	fail := func() error {
		return m.expect(http.StatusAccepted, nil, "POST", "/v1/accounts/"+inn+"/events", m.keys.Auth,
			drive.JSON(contract.AccountEvent{EventID: "demo-" + newIdempotencyKey(), Type: contract.EventLoginFailed}))
	}
	w.step("report the failed logins on record")
	n := min(subj.Account.FailedLogins, threshold) // more than the threshold locks [001:175]
	for i := 0; i < n; i++ {
		if err := fail(); err != nil {
			return w.fail(err)
		}
	}
	st, err := poll(m, "the failed logins to be counted", read(inn), func(st workflows.AccountStatus) bool { return st.EventsSeen >= before.EventsSeen+n }, describe)
	if err != nil {
		return w.fail(err)
	}
	if st.Status != workflows.AccountActive {
		return w.fail(fmt.Errorf("locked after %d failures, not more than the threshold of %d", st.Failures, threshold))
	}
	w.show(st.Status, st.Label, fmt.Sprintf("%d failed logins in a row (more than %d lock)", st.Failures, threshold))

	w.step("one more failed login")
	for st.Status == workflows.AccountActive {
		if st.Failures > threshold {
			return w.fail(fmt.Errorf("not locked after %d failures in a row (threshold %d)", st.Failures, threshold))
		}
		seen := st.EventsSeen
		if err := fail(); err != nil {
			return w.fail(err)
		}
		if st, err = poll(m, "the failed login to be counted", read(inn), func(st workflows.AccountStatus) bool { return st.EventsSeen > seen }, describe); err != nil {
			return w.fail(err)
		}
	}
	if st.Status != workflows.AccountAutoUnlockPending {
		return w.fail(fmt.Errorf("locked as %s, want %s", st.Status, workflows.AccountAutoUnlockPending))
	}
	until := ""
	if st.Until != nil {
		until = " until " + st.Until.In(calendar.Moscow).Format("15:04 MSK")
	}
	w.show(st.Status, st.Label, fmt.Sprintf("locked after %d failed logins in a row%s; open paths: %v", threshold+1, until, st.OpenPaths))

	w.step("self-service unblock")
	var after workflows.AccountStatus
	if err := m.expect(http.StatusOK, &after, "POST", "/v1/accounts/"+inn+"/unblock/self-service", m.keys.Integrator,
		drive.JSON(workflows.SelfServiceRequest{FullName: seed.CabinetName(subj.Taxpayer), PassportSeries: subj.Taxpayer.Passport.Series})); err != nil {
		return w.fail(err)
	}
	if st, err = poll(m, "the account to open", read(inn), func(st workflows.AccountStatus) bool { return st.Status == workflows.AccountActive }, describe); err != nil {
		return w.fail(err)
	}
	w.show(st.Status, st.Label, "unblocked by self-service: INN, full name and passport series match the registry")
	return w.o
}

// accountSubject picks the first seeded account that is open and far enough from the
// specialist-only lock (the third within 24 h): those near the lock threshold first, then
// any other a self-service unblock can open, since earlier demo runs on the same data
// (make dev, then make demo) may have locked the near ones. Each account serves two runs
// a day, so the seeded accounts last for many runs.
func (m *demo) accountSubject(read func(string) func() (workflows.AccountStatus, error)) (seed.Subject, workflows.AccountStatus, error) {
	near := m.d.FindAll(seed.AccountNearLock)
	if len(near) == 0 {
		_, err := m.d.Find(seed.AccountNearLock)
		return seed.Subject{}, workflows.AccountStatus{}, err
	}
	all, seen := near, map[string]bool{}
	for _, s := range near {
		seen[s.Taxpayer.INN] = true
	}
	for _, s := range m.d.FindAll(seed.AccountSelfService) {
		if !seen[s.Taxpayer.INN] {
			all = append(all, s)
		}
	}
	for _, s := range all {
		st, err := read(s.Taxpayer.INN)()
		if err != nil {
			return s, st, err
		}
		if st.Status == workflows.AccountActive && st.Failures == 0 && len(st.Locks) < m.cfg.Account.SpecialistAfter-1 {
			return s, st, nil
		}
	}
	return seed.Subject{}, workflows.AccountStatus{}, fmt.Errorf("every one of the %d seeded accounts a self-service unblock can open was locked by earlier demo runs in the last 24 h; start from a fresh run directory (remove %s)",
		len(all), m.dir)
}
