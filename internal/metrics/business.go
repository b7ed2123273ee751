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
	BusinessTruncated  = "taxflow_business_truncated"
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

// Business computes the business gauges from the case projection (functions/cases,
// index by_status) every interval. Its DynamoDB load is bounded: one paginated Query per
// open status and one for today's payouts per run, each stopping at MaxItems (the
// gauge taxflow_business_truncated says when a run stopped early); never a Scan.
type Business struct {
	DB        store.DB
	Table     string // the cases table
	Index     string // its by_status index
	Processes []Process
	Calendar  *calendar.Calendar
	Now       func() time.Time
	MaxItems  int // per status per run; 0: 50 000

	open      *prometheus.GaugeVec
	near      *prometheus.GaugeVec
	overdue   *prometheus.GaugeVec
	payouts   prometheus.Gauge
	paid      prometheus.Gauge
	reserved  prometheus.Gauge
	last      prometheus.Gauge
	errs      prometheus.Counter
	truncated prometheus.Gauge
	mu        sync.Mutex
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
	b.truncated = prometheus.NewGauge(prometheus.GaugeOpts{Name: BusinessTruncated,
		Help: "1 when the last run stopped at its item limit: the gauges undercount."})
	m.Registry.MustRegister(b.open, b.near, b.overdue, b.payouts, b.paid, b.reserved, b.last, b.errs, b.truncated)
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
	Process  string           `json:"process"`
	Deadline time.Time        `json:"deadline"`
	Amounts  map[string]int64 `json:"amounts"`
}

type counts struct {
	open          map[[2]string]float64
	near, overdue map[string]float64
	payouts, paid float64
	reserved      float64
	truncated     bool
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
	for _, s := range statuses {
		err := b.query(ctx, "#s = :s", map[string]types.AttributeValue{":s": store.S(s)}, &c.truncated, func(r projection) {
			i := slices.IndexFunc(byStatus[s], func(p Process) bool { return p.Name == r.Process })
			if i < 0 {
				return // a status of another process that has it closed
			}
			p := byStatus[s][i]
			c.open[[2]string{p.Name, s}]++
			if !r.Deadline.IsZero() {
				if r.Deadline.Before(now) {
					c.overdue[p.Name]++
				} else if r.Deadline.Before(nearBy) {
					c.near[p.Name]++
				}
			}
			if slices.Contains(p.Reserved, s) {
				c.reserved += float64(r.Amounts["approved"])
			}
		})
		if err != nil {
			return fmt.Errorf("business gauges: open cases in %s: %w", s, err)
		}
	}
	// Paid today: the projection's sort key (updated_at, UTC) from the Moscow midnight.
	m := now.In(calendar.Moscow)
	midnight := time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, calendar.Moscow).UTC().Format(time.RFC3339)
	for _, p := range b.Processes {
		if p.Paid == "" {
			continue
		}
		err := b.query(ctx, "#s = :s AND updated_at >= :d", map[string]types.AttributeValue{":s": store.S(p.Paid), ":d": store.S(midnight)},
			&c.truncated, func(r projection) {
				if r.Process == p.Name {
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
	b.truncated.Set(map[bool]float64{false: 0, true: 1}[c.truncated])
	b.last.Set(float64(now.Unix()))
	return nil
}

// query pages through the index with key condition cond, reading only what the gauges
// need, and stops at MaxItems.
func (b *Business) query(ctx context.Context, cond string, values map[string]types.AttributeValue, truncated *bool, each func(projection)) error {
	limit := b.MaxItems
	if limit <= 0 {
		limit = 50_000
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(b.Table), IndexName: aws.String(b.Index),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#s": "status", "#p": "process", "#d": "deadline", "#a": "amounts"},
		ExpressionAttributeValues: values,
		ProjectionExpression:      aws.String("#p, #d, #a"),
		Limit:                     aws.Int32(1000),
	}
	n := 0
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
		n += len(page)
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		if n >= limit {
			*truncated = true
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
