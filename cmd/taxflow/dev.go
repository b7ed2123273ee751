package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/api"
)

// runDev is the main job: the whole local stack with a demo. It starts what is not
// running, applies the infrastructure, runs the worker and the API in this process, runs
// the self-check as a demo, and on Ctrl-C stops the worker, the API and every part of
// the stack it started itself.
func runDev(ctx context.Context) error {
	s, err := localStack()
	if err != nil {
		return err
	}
	wasRunning := s.Status()
	say := func(line string) { fmt.Println(line) }
	if err := s.Up(ctx, say); err != nil {
		return err
	}
	startedAny := false
	for _, up := range wasRunning {
		if !up {
			startedAny = true
		}
	}
	if startedAny {
		defer func() {
			fmt.Println("stopping the local stack")
			_ = s.Down(say)
		}()
	}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if os.Getenv(k) == "" || strings.HasPrefix(k, "AWS_ENDPOINT_URL") || k == "TEMPORAL_ADDRESS" {
			os.Setenv(k, v)
		}
	}
	if os.Getenv("TAXFLOW_LOG_FORMAT") == "" {
		os.Setenv("TAXFLOW_LOG_FORMAT", "console")
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	if err := applyInfra(ctx, a); err != nil {
		return err
	}
	if err := seedData(ctx, a, 500, 2026); err != nil {
		return err
	}
	integratorKey, err := a.keys().Create(ctx, api.Principal{ID: "demo-cabinet", Tenant: "demo-cabinet", Role: api.RoleIntegrator, Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite,
		api.ScopeIdentityRead, api.ScopeIdentityWrite, api.ScopeConsent}})
	if err != nil {
		return err
	}
	reviewerKey, err := a.keys().Create(ctx, api.Principal{ID: "demo-inspector", Tenant: "tax-office", Role: api.RoleReviewer})
	if err != nil {
		return err
	}
	c, err := a.temporal()
	if err != nil {
		return err
	}
	defer c.Close()
	stopWorker, err := a.startWorker(c)
	if err != nil {
		return err
	}
	defer stopWorker()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveAPI(gctx, a, c) })
	if err := doctor(ctx, a, c); err != nil {
		return err
	}
	if err := demoRefund(ctx, a, c, integratorKey, reviewerKey); err != nil {
		return err
	}
	fmt.Printf("\ntaxflow is running. Temporal UI: http://127.0.0.1:%d  API: http://%s  (Ctrl-C stops it)\n", s.Ports.TemporalUI, a.cfg.APIAddr)
	fmt.Printf("demo keys (this run only): integrator %s  reviewer %s\n\n", integratorKey, reviewerKey)
	return g.Wait()
}
