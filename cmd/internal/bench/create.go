package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/stack"
	"github.com/taxflow/taxflow/workflows"
)

// benchCreate measures creating a refund case through the API (authentication, the
// claim's checks, the start that is also the idempotency check) against a bare Temporal start of the same workflow on the same server, at each
// concurrency. Both start on a task queue no worker polls, so only the create path is
// measured; the runs are terminated afterwards. With the run directory's stack, the CPU
// each process spent per create is shown too (the API runs in the bench's process).
func benchCreate(ctx context.Context, a *app, c client.Client, t Target, perRun, rounds int, clients []int) error {
	cases, err := prepare(ctx, a, 50)
	if err != nil {
		return err
	}
	queue := "bench-create-" + uuid.NewString()[:8]
	srv := api.New(a.cfg, a.clients, c, zerolog.Nop())
	srv.TaskQueue = queue
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(ln.Addr().String())
	go func() { _ = hs.Serve(ln) }()
	defer func() { _ = hs.Shutdown(context.Background()) }()
	key, err := api.Keys(a.cfg, a.clients).Create(ctx, api.Principal{ID: "bench-create", Tenant: "bench", Role: api.RoleIntegrator})
	if err != nil {
		return err
	}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}, Timeout: 30 * time.Second}
	base := "http://" + ln.Addr().String()

	var mu sync.Mutex
	var started []string
	viaAPI := func(i int) error {
		in := cases[i%len(cases)]
		body, _ := json.Marshal(map[string]any{"inn": in.INN, "period": in.Period, "amount_kopecks": 100, "reason": "bench"})
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/refunds", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", uuid.NewString())
		resp, err := httpc.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		var out struct {
			CaseID string `json:"case_id"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil {
			return fmt.Errorf("create through the API: %d %s", resp.StatusCode, b)
		}
		mu.Lock()
		started = append(started, out.CaseID)
		mu.Unlock()
		return nil
	}
	bare := func(i int) error {
		in := cases[i%len(cases)]
		in.CaseID = workflows.RefundID(uuid.NewString())
		in.Amount = 100
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.CaseID, TaskQueue: queue}, workflows.Refund, in); err != nil {
			return err
		}
		mu.Lock()
		started = append(started, in.CaseID)
		mu.Unlock()
		return nil
	}
	defer func() { terminate(context.WithoutCancel(ctx), c, started) }()

	fmt.Printf("\ncreate path: %d creates per run, median of %d rounds; API (key, claim checks, the start with its memo) vs a bare start of the same workflow\n", perRun, rounds)
	fmt.Printf("%-8s %-6s %10s %10s %10s\n", "clients", "via", "creates/s", "p50", "p99")
	type pair struct{ api, bare createResult }
	summary := map[int]pair{}
	cpu := map[string]map[string]float64{} // "<clients> <via>" → process → CPU seconds, all rounds
	var cpuRows []string
	for _, n := range clients {
		// Warm the connections and the API's caches of keys and claims.
		if _, err := loadCreates(ctx, n, 2*n, viaAPI); err != nil {
			return err
		}
		if _, err := loadCreates(ctx, n, 2*n, bare); err != nil {
			return err
		}
		var apis, bares []createResult
		for round := range rounds {
			order := []string{"api", "bare"}
			if round%2 == 1 {
				order = []string{"bare", "api"}
			}
			for _, via := range order {
				f := map[string]func(int) error{"api": viaAPI, "bare": bare}[via]
				before := cpuNow(t.st, t.haveStack, nil)
				r, err := loadCreates(ctx, n, perRun, f)
				if err != nil {
					return fmt.Errorf("%s at %d clients: %w", via, n, err)
				}
				after := cpuNow(t.st, t.haveStack, nil)
				row := fmt.Sprintf("%d clients, %s", n, via)
				if cpu[row] == nil {
					cpu[row] = map[string]float64{}
					cpuRows = append(cpuRows, row)
				}
				for k, v := range after {
					cpu[row][k] += v - before[k]
				}
				if via == "api" {
					apis = append(apis, r)
				} else {
					bares = append(bares, r)
				}
			}
		}
		p := pair{median(apis), median(bares)}
		summary[n] = p
		for _, row := range []struct {
			via string
			r   createResult
		}{{"api", p.api}, {"bare", p.bare}} {
			fmt.Printf("%-8d %-6s %10.1f %10s %10s\n", n, row.via, row.r.rate, row.r.p50.Round(time.Millisecond), row.r.p99.Round(time.Millisecond))
		}
	}
	if t.haveStack {
		fmt.Printf("\n%-24s", "CPU ms per create")
		for _, k := range append(cpuTable, "total", "others") {
			fmt.Printf(" %9s", k)
		}
		fmt.Println()
		for _, row := range cpuRows {
			fmt.Printf("%-24s", row)
			for _, v := range cpuRow(cpu[row], perRun*rounds, t.backend == stack.TemporalServer) {
				fmt.Printf(" %9s", v)
			}
			fmt.Println()
		}
		fmt.Println("(worker: the bench's process — its HTTP clients, the API and the Temporal client; no worker polls the queue;\n" +
			" others: the machine's CPU not used by these processes, i.e. by anything else running on it at the time)")
	}
	fmt.Println()
	for _, n := range clients {
		p := summary[n]
		fmt.Printf("create at %d clients: p99 %.2fx a bare start (goal <= 1.2x), throughput %.2fx (goal >= 0.9x), p50 %.2fx\n", n,
			float64(p.api.p99)/float64(p.bare.p99), p.api.rate/p.bare.rate, float64(p.api.p50)/float64(p.bare.p50))
	}
	return nil
}

type createResult struct {
	rate     float64
	p50, p99 time.Duration
}

// median is the round with the median throughput.
func median(rs []createResult) createResult {
	sort.Slice(rs, func(i, j int) bool { return rs[i].rate < rs[j].rate })
	return rs[len(rs)/2]
}

// loadCreates runs total calls of f from n concurrent clients and times each.
func loadCreates(ctx context.Context, n, total int, f func(int) error) (createResult, error) {
	var next atomic.Int64
	lat := make([]time.Duration, total)
	g, _ := errgroup.WithContext(ctx)
	t0 := time.Now()
	for range n {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return nil
				}
				s := time.Now()
				if err := f(i); err != nil {
					return err
				}
				lat[i] = time.Since(s)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return createResult{}, err
	}
	elapsed := time.Since(t0)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return createResult{rate: float64(total) / elapsed.Seconds(), p50: lat[total/2], p99: lat[total*99/100]}, nil
}

// terminate ends the runs a create bench left waiting on its unpolled task queue.
func terminate(ctx context.Context, c client.Client, ids []string) {
	g := errgroup.Group{}
	g.SetLimit(16)
	for _, id := range ids {
		g.Go(func() error {
			_ = c.TerminateWorkflow(ctx, id, "", "create bench: measured, not run")
			return nil
		})
	}
	_ = g.Wait()
}
