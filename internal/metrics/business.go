package metrics

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/counters"
	"github.com/taxflow/taxflow/internal/store"
)

// Names of the business gauges.
const (
	CasesOpen          = "taxflow_cases_open"
	CasesDeadlineNear  = "taxflow_cases_deadline_near"
	CasesOverdue       = "taxflow_cases_overdue"
	PayoutsToday       = "taxflow_payouts_today"
	PaidTodayKopecks   = "taxflow_paid_today_kopecks"
	ReservedKopecks    = "taxflow_reserved_kopecks"
	BusinessLastUpdate = "taxflow_business_last_update_timestamp_seconds"
	BusinessErrors     = "taxflow_business_errors_total"
)

// NearWorkingDays: a case whose deadline falls within this many working days counts as
// near its deadline (taxflow_cases_deadline_near).
const NearWorkingDays = 3

// Process is one process's closed set of statuses for the business gauges.
type Process struct {
	Name string
	// Open are the statuses of a case still in progress (counted, deadlines watched).
	Open []string
	// Reserved are the open statuses whose approved amount is reserved in the ledger
	// and not yet paid (a refund approved, or whose payout failed).
	Reserved []string
	// Paid is the status a payout ends in ("" for a process that pays nothing).
	Paid string
}

// Business computes the business gauges every interval, exactly whatever the number of
// cases (no item limit):
//   - open cases and the reserved amount from the case counters (counters.Table),
//     which each step's transaction keeps: one Scan of that table, a few hundred small
//     items (processes × statuses × counters.Shards), whatever the number of cases;
//   - deadlines near and overdue from the case projection's by_status index: every open
//     case's deadline, one paginated Query per open status. A deadline moves into "near"
//     and "overdue" with the clock, not with a step, so no counter kept by the steps can
//     say it; this reads every open case (its cost grows with them: about 0.125 read
//     units per case a run, eventually consistent, 1 KB items), exact, never capped;
//   - today's payouts from the same index: the paid projections updated since the Moscow
//     midnight (a window), never capped.
type Business struct {
	DB        store.DB
	Table     string // the cases table
	Index     string // its by_status index
	Counts    string // the case counters (counters.Table)
	Processes []Process
	Calendar  *calendar.Calendar
	Now       func() time.Time

	open     *prometheus.GaugeVec
	near     *prometheus.GaugeVec
	overdue  *prometheus.GaugeVec
	payouts  prometheus.Gauge
	paid     prometheus.Gauge
	reserved prometheus.Gauge
	last     prometheus.Gauge
	errs     prometheus.Counter
	mu       sync.Mutex
}

// Register creates the gauges in m's registry, every label combination at zero.
func (b *Business) Register(m *Metrics) {
	b.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: CasesOpen, Help: "Open cases by process and status (case projections)."}, []string{"process", "status"})
	b.near = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: CasesDeadlineNear,
		Help: "Open cases whose deadline falls within 3 working days (production calendar), by process."}, []string{"process"})
	b.overdue = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: CasesOverdue, Help: "Open cases past their deadline, by process."}, []string{"process"})
	b.payouts = prometheus.NewGauge(prometheus.GaugeOpts{Name: PayoutsToday, Help: "Refunds paid today (Moscow day)."})
	b.paid = prometheus.NewGauge(prometheus.GaugeOpts{Name: PaidTodayKopecks, Help: "Amount paid today (Moscow day), kopecks."})
	b.reserved = prometheus.NewGauge(prometheus.GaugeOpts{Name: ReservedKopecks,
		Help: "Amount reserved in the ledger for approved refunds not yet paid, kopecks."})
	b.last = prometheus.NewGauge(prometheus.GaugeOpts{Name: BusinessLastUpdate, Help: "When the business gauges were last computed, Unix seconds."})
	b.errs = prometheus.NewCounter(prometheus.CounterOpts{Name: BusinessErrors, Help: "Runs of the business gauges that failed to read the projections."})
	m.Registry.MustRegister(b.open, b.near, b.overdue, b.payouts, b.paid, b.reserved, b.last, b.errs)
	for _, p := range b.Processes {
		for _, s := range p.Open {
			b.open.WithLabelValues(p.Name, s)
		}
		b.near.WithLabelValues(p.Name)
		b.overdue.WithLabelValues(p.Name)
	}
}

// Run updates the gauges now and every interval until ctx ends; a failed run is
// counted (taxflow_business_errors_total) and reported to onErr, and the gauges keep
// their last values.
func (b *Business) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := b.Update(ctx); err != nil && ctx.Err() == nil {
			b.errs.Inc()
			if onErr != nil {
				onErr(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// projection is the part of a case record the gauges read.
type projection struct {
	Process   string           `json:"process"`
	Deadline  time.Time        `json:"deadline"`
	UpdatedAt time.Time        `json:"updated_at"`
	Amounts   map[string]int64 `json:"amounts"`
}

type counts struct {
	open          map[[2]string]float64
	near, overdue map[string]float64
	payouts, paid float64
	reserved      float64
}

// Update computes every gauge once.
func (b *Business) Update(ctx context.Context) error {
	b.mu.Lock() // one run at a time: a slow run never overlaps the next
	defer b.mu.Unlock()
	now := b.Now()
	nearBy := b.Calendar.AddWorkingDays(now, NearWorkingDays)
	c := counts{open: map[[2]string]float64{}, near: map[string]float64{}, overdue: map[string]float64{}}
	// Statuses are shared between processes (received, in_review...): one query each.
	byStatus := map[string][]Process{}
	var statuses []string
	for _, p := range b.Processes {
		for _, s := range p.Open {
			if byStatus[s] == nil {
				statuses = append(statuses, s)
			}
			byStatus[s] = append(byStatus[s], p)
		}
	}
	slices.Sort(statuses)
	if err := b.counted(ctx, &c); err != nil {
		return err
	}
	for _, s := range statuses {
		err := b.query(ctx, "#s = :s", map[string]types.AttributeValue{":s": store.S(s)}, func(r projection) {
			i := slices.IndexFunc(byStatus[s], func(p Process) bool { return p.Name == r.Process })
			if i < 0 || r.Deadline.IsZero() {
				return // a status of another process that has it closed; no deadline
			}
			p := byStatus[s][i]
			if r.Deadline.Before(now) {
				c.overdue[p.Name]++
			} else if r.Deadline.Before(nearBy) {
				c.near[p.Name]++
			}
		})
		if err != nil {
			return fmt.Errorf("business gauges: open cases in %s: %w", s, err)
		}
	}
	// Paid today: the projection's sort key (updated_at, UTC) from the Moscow midnight.
	m := now.In(calendar.Moscow)
	midnight := time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, calendar.Moscow)
	// updated_at is RFC 3339 with a variable fraction ("…00.5Z" sorts before "…00Z"): the
	// key condition starts a second early and the decoded time decides.
	from := midnight.Add(-time.Second).UTC().Format(time.RFC3339)
	for _, p := range b.Processes {
		if p.Paid == "" {
			continue
		}
		err := b.query(ctx, "#s = :s AND updated_at >= :d", map[string]types.AttributeValue{":s": store.S(p.Paid), ":d": store.S(from)},
			func(r projection) {
				if r.Process == p.Name && !r.UpdatedAt.Before(midnight) {
					c.payouts++
					c.paid += float64(r.Amounts["paid"])
				}
			})
		if err != nil {
			return fmt.Errorf("business gauges: payouts today: %w", err)
		}
	}
	for _, p := range b.Processes {
		for _, s := range p.Open {
			b.open.WithLabelValues(p.Name, s).Set(c.open[[2]string{p.Name, s}])
		}
		b.near.WithLabelValues(p.Name).Set(c.near[p.Name])
		b.overdue.WithLabelValues(p.Name).Set(c.overdue[p.Name])
	}
	b.payouts.Set(c.payouts)
	b.paid.Set(c.paid)
	b.reserved.Set(c.reserved)
	b.last.Set(float64(now.Unix()))
	return nil
}

// counted reads the case counters: open cases per process and open status (summed over
// shards) and the approved amount of the reserved statuses. The table holds counters
// only, a few hundred items: it is read whole (one page in practice).
func (b *Business) counted(ctx context.Context, c *counts) error {
	type counter struct {
		Key      string `json:"counter"`
		N        int64  `json:"n"`
		Approved int64  `json:"approved"`
	}
	in := &dynamodb.ScanInput{TableName: aws.String(b.Counts), ConsistentRead: aws.Bool(true)}
	for {
		out, err := b.DB.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("business gauges: case counters: %w", err)
		}
		var page []counter
		if err := store.UnmarshalList(out.Items, &page); err != nil {
			return fmt.Errorf("business gauges: decode case counters: %w", err)
		}
		for _, k := range page {
			process, status, _, ok := counters.ParseCounterKey(k.Key)
			if !ok {
				continue
			}
			i := slices.IndexFunc(b.Processes, func(p Process) bool { return p.Name == process })
			if i < 0 || !slices.Contains(b.Processes[i].Open, status) {
				continue
			}
			c.open[[2]string{process, status}] += float64(k.N)
			if slices.Contains(b.Processes[i].Reserved, status) {
				c.reserved += float64(k.Approved)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// query pages through the index with key condition cond to its end, reading only what
// the gauges need.
func (b *Business) query(ctx context.Context, cond string, values map[string]types.AttributeValue, each func(projection)) error {
	in := &dynamodb.QueryInput{
		TableName: aws.String(b.Table), IndexName: aws.String(b.Index),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#s": "status", "#p": "process", "#d": "deadline", "#a": "amounts", "#u": "updated_at"},
		ExpressionAttributeValues: values,
		ProjectionExpression:      aws.String("#p, #d, #a, #u"),
		Limit:                     aws.Int32(1000),
	}
	for {
		out, err := b.DB.Query(ctx, in)
		if err != nil {
			return err
		}
		var page []projection
		if err := store.UnmarshalList(out.Items, &page); err != nil {
			return fmt.Errorf("decode projections: %w", err)
		}
		for _, r := range page {
			each(r)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
