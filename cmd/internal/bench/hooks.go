package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// The cost of events (bench --webhooks): refunds of a tenant with one webhook endpoint
// registered against refunds of a tenant with none, in the same run, rounds alternating;
// every refund's steps write their events and the relay moves them into the feed either
// way, so the difference is what delivering costs. The endpoint is a receiver on loopback
// (cmd/internal/drive) that verifies each delivery with the Standard Webhooks library; the lag
// of an event is from its transition's commit (occurred_at) to the receiver's 200.

func benchWebhooks(ctx context.Context, a *app, c client.Client, n, rounds int) error {
	inv := &invoker.Lambda{Client: a.clients.Lambda, Resolve: a.cfg.Name}
	queue, stop, err := benchWorker(a, c, inv)
	if err != nil {
		return err
	}
	defer stop()
	relayID := "bench-event-relay-" + uuid.NewString()[:8]
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: relayID, TaskQueue: queue}, workflows.EventRelay, workflows.EventRelayInput{}); err != nil {
		return fmt.Errorf("start the event relay: %w", err)
	}
	defer func() { _ = c.TerminateWorkflow(context.WithoutCancel(ctx), relayID, "", "bench over") }()

	srv := api.New(a.cfg, a.clients, c, zerolog.Nop())
	srv.TaskQueue = queue
	srv.Webhooks.Policy.AllowLoopback = true // the receiver is on loopback, as on the local stack
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(ln.Addr().String())
	go func() { _ = hs.Serve(ln) }()
	defer func() { _ = hs.Shutdown(context.Background()) }()
	base := "http://" + ln.Addr().String()

	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	hooked, plain := "bench-hooks-"+suffix, "bench-plain-"+suffix
	key, err := api.Keys(a.cfg, a.clients).Create(ctx, api.Principal{ID: hooked, Tenant: hooked, Role: api.RoleIntegrator})
	if err != nil {
		return err
	}
	rcv, err := drive.StartReceiver()
	if err != nil {
		return err
	}
	defer rcv.Close()
	hc := &http.Client{Timeout: 30 * time.Second}
	var ans drive.WebhookAnswer
	if err := drive.Expect(ctx, hc, base, http.StatusCreated, &ans, "POST", "/v1/webhooks", key,
		drive.JSON(map[string]any{"url": rcv.URL(), "event_types": []string{"*"}}), "Idempotency-Key", uuid.NewString()); err != nil {
		return fmt.Errorf("register the endpoint: %w", err)
	}
	if err := rcv.SetSecret(ans.Secret); err != nil {
		return err
	}
	defer func() {
		_ = drive.Expect(context.WithoutCancel(ctx), hc, base, http.StatusNoContent, nil, "DELETE", "/v1/webhooks/"+ans.ID, key, nil)
	}()

	// A round's refunds, owned by the tenant as the API's create would record it.
	owned := func(tenant string, k int) ([]workflows.RefundWorkflowInput, error) {
		inputs, err := prepare(ctx, a, k)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		for _, in := range inputs {
			owner := map[string]any{"case_id": in.CaseID, "tenant": tenant, "created_by": tenant + "/bench", "created_at": time.Now().Unix()}
			if _, err := store.PutNew(ctx, a.clients.DynamoDB, a.cfg.Name(api.OwnersTable), "case_id", owner); err != nil {
				return nil, fmt.Errorf("record the owner: %w", err)
			}
		}
		return inputs, nil
	}
	// Warm up both.
	for _, tenant := range []string{hooked, plain} {
		in, err := owned(tenant, 2)
		if err != nil {
			return err
		}
		if _, err := runRefunds(ctx, a, c, queue, in); err != nil {
			return err
		}
	}
	results := map[string][]benchResult{}
	var hookedIDs []string
	for round := range rounds {
		order := []string{hooked, plain}
		if round%2 == 1 {
			order = []string{plain, hooked}
		}
		for _, tenant := range order {
			in, err := owned(tenant, n)
			if err != nil {
				return err
			}
			r, err := runRefunds(ctx, a, c, queue, in)
			if err != nil {
				return err
			}
			name := map[bool]string{true: "one endpoint", false: "no endpoint"}[tenant == hooked]
			fmt.Printf("round %d %-14s %6.2f wf/s  p50 %s  p99 %s\n", round+1, name, r.throughput, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond))
			results[name] = append(results[name], r)
			if tenant == hooked {
				hookedIDs = append(hookedIDs, r.ids...)
			}
		}
	}
	if err := rcv.WaitFor(ctx, hookedIDs, map[string]bool{"refund.paid": true}, 2*time.Minute); err != nil {
		return err
	}
	if err := rcv.OrderKept(); err != nil {
		return err
	}
	median := func(rs []benchResult) benchResult {
		sort.Slice(rs, func(i, j int) bool { return rs[i].throughput < rs[j].throughput })
		return rs[len(rs)/2]
	}
	with, without := median(results["one endpoint"]), median(results["no endpoint"])
	lags := rcv.Lags()
	if len(lags) == 0 {
		return fmt.Errorf("the receiver got no event")
	}
	repeats := 0
	for _, e := range rcv.Events() {
		repeats += e.Deliveries - 1
	}
	fmt.Printf("\nrefund throughput with one webhook endpoint vs none (median of %d rounds, N = %d): %.2f / %.2f wf/s = %.2fx (goal >= 0.9x)\n",
		rounds, n, with.throughput, without.throughput, with.throughput/without.throughput)
	fmt.Printf("delivery lag, commit to the receiver's 200, over %d events: p50 %s, p99 %s, max %s (%d repeated deliveries, %d refused signatures)\n",
		len(lags), pct(lags, 0.50).Round(time.Millisecond), pct(lags, 0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), repeats, rcv.Refused())
	return nil
}
