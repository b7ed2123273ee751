//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// modelAccount is the lockout rule written the simplest way, to check the workflow by.
type modelAccount struct {
	status   string
	failures int
	locks    int
	seen     map[string]bool
}

func (m *modelAccount) apply(e contract.AccountEvent, policy workflows.AccountPolicy) {
	if m.seen[e.EventID] {
		return
	}
	m.seen[e.EventID] = true
	switch e.Type {
	case contract.EventLoginSucceeded:
		if m.status == workflows.AccountActive {
			m.failures = 0
		}
	case contract.EventLoginFailed:
		if m.status != workflows.AccountActive {
			return
		}
		if m.failures++; m.failures > policy.Threshold { // "more than five" [001:175]
			m.failures = 0
			m.locks++ // the burst lasts far less than 15 minutes: no lock lifts meanwhile
			m.status = workflows.AccountAutoUnlockPending
			if m.locks >= policy.SpecialistAfter {
				m.status = workflows.AccountAwaitingSpecialist
			}
		}
	case contract.EventSuspicious:
		if m.status != workflows.AccountAwaitingIdentity && m.status != workflows.AccountAwaitingSpecialist {
			m.status = workflows.AccountAwaitingIdentity
		}
	}
}

// checkAccountAsModel waits until the account has applied every event the model saw, then
// checks its status, failures and locks against the model.
func checkAccountAsModel(t *testing.T, inn string, m *modelAccount, deadline time.Time, get func(method, path string, body []byte, headers ...string) (int, []byte)) {
	t.Helper()
	for {
		code, out := get("GET", "/v1/accounts/"+inn+"/lock", nil)
		var st workflows.AccountStatus
		_ = json.Unmarshal(out, &st)
		if code == http.StatusOK && st.EventsSeen == len(m.seen) {
			if st.Status != m.status || st.Failures != m.failures || len(st.Locks) != m.locks {
				t.Fatalf("account %s: workflow %s failures %d locks %d; model %s failures %d locks %d",
					inn[len(inn)-4:], st.Status, st.Failures, len(st.Locks), m.status, m.failures, m.locks)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("account %s applied %d of %d events", inn[len(inn)-4:], st.EventsSeen, len(m.seen))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// 10,000 events for 100 accounts sent concurrently through the API, some twice; every
// account ends in the state the model computes. Runs continue-as-new every 30 events.
func TestAccountEventBurst(t *testing.T) {
	const accounts, perAccount = 100, 100
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	s.AccountPolicy.ContinueAfter = 30
	base := newServer(t, s)
	key, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(),
		api.Principal{ID: "e2e-auth", Tenant: "e2e-auth", Role: api.RoleAuthSystem, Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead}})
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{t, base + "|" + key}

	type plan struct {
		inn    string
		events []contract.AccountEvent // in sending order, repeats included
		model  *modelAccount
	}
	plans := make([]plan, accounts)
	sent := 0
	for i := range plans {
		p := plan{inn: domain.CompleteINN12(fmt.Sprintf("78%08d", rand.IntN(100_000_000))),
			model: &modelAccount{status: workflows.AccountActive, seen: map[string]bool{}}}
		for j := 0; j < perAccount; j++ {
			typ := contract.EventLoginFailed
			switch r := rand.IntN(100); {
			case r < 2:
				typ = contract.EventSuspicious
			case r < 45:
				typ = contract.EventLoginSucceeded
			}
			e := contract.AccountEvent{EventID: uuid.NewString(), Type: typ}
			p.events = append(p.events, e)
			if rand.IntN(100) < 5 { // sent twice
				p.events = append(p.events, e)
			}
		}
		for _, e := range p.events {
			p.model.apply(e, s.AccountPolicy)
		}
		sent += len(p.events)
		plans[i] = p
	}

	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, p := range plans {
		wg.Add(1)
		go func(p plan) { // one account's events in order; accounts at once
			defer wg.Done()
			for _, e := range p.events {
				body, _ := json.Marshal(e)
				if code, out := c.do("POST", "/v1/accounts/"+p.inn+"/events", body); code != http.StatusAccepted {
					failed.Add(1)
					t.Logf("event refused: %d %s", code, out)
				}
			}
		}(p)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d events refused", failed.Load())
	}
	sendTime := time.Since(start)

	deadline := time.Now().Add(5 * time.Minute)
	for _, p := range plans {
		checkAccountAsModel(t, p.inn, p.model, deadline, c.do)
	}
	t.Logf("%d events (%d accounts, repeats included) sent in %s; all applied and checked after %s",
		sent, accounts, sendTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// Lock by failed logins, then self-service over HTTP: wrong data is refused, the right
// data unblocks and clears the confirmed mark.
func TestAccountSelfServiceOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	key, _ := api.Keys(shared.cfg, shared.clients).Create(context.Background(),
		api.Principal{ID: "e2e-auth", Tenant: "e2e-auth", Role: api.RoleAuthSystem, Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead, api.ScopeAccountUnblock}})
	c := &apiClient{t, base + "|" + key}
	p := newPerson(t, true)
	for i := 0; i < s.AccountPolicy.Threshold+1; i++ { // more than the threshold locks [001:175]
		body, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: contract.EventLoginFailed})
		if code, out := c.do("POST", "/v1/accounts/"+p.INN+"/events", body); code != http.StatusAccepted {
			t.Fatalf("event: %d %s", code, out)
		}
	}
	var st workflows.AccountStatus
	for deadline := time.Now().Add(30 * time.Second); st.Status != workflows.AccountAutoUnlockPending; {
		_, out := c.do("GET", "/v1/accounts/"+p.INN+"/lock", nil)
		_ = json.Unmarshal(out, &st)
		if time.Now().After(deadline) {
			t.Fatalf("not locked: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Until == nil || st.Label != "Временная блокировка" || len(st.OpenPaths) != 3 {
		t.Fatalf("lock state %+v", st)
	}
	if code, _ := c.do("POST", "/v1/accounts/"+p.INN+"/unblock/self-service", []byte(`{"full_name":"Иванова Анна Сергеевна","passport_series":"`+p.PassportSeries+`"}`)); code != http.StatusUnprocessableEntity {
		t.Fatalf("wrong name: %d, want 422", code)
	}
	code, out := c.do("POST", "/v1/accounts/"+p.INN+"/unblock/self-service", []byte(`{"full_name":"федорова анна сергеевна","passport_series":"`+p.PassportSeries+`"}`))
	if code != http.StatusOK {
		t.Fatalf("self-service: %d %s", code, out)
	}
	_, out = c.do("GET", "/v1/accounts/"+p.INN+"/lock", nil)
	_ = json.Unmarshal(out, &st)
	if st.Status != workflows.AccountActive {
		t.Fatalf("after self-service: %+v", st)
	}
	if code, _ := c.do("POST", "/v1/accounts/"+p.INN+"/unblock/specialist-decision", []byte(`{"approve":true}`)); code != http.StatusForbidden {
		t.Fatalf("an integrator decided as a specialist: %d", code)
	}
}
