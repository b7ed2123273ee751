package metrics_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	dto "github.com/prometheus/client_model/go"

	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

var (
	functions = []string{"selfcheck", "payout"}
	routes    = []string{"POST /v1/refunds", "GET /v1/refunds/{id}"}
	processes = []metrics.Process{
		{Name: "refund", Open: []string{"received", "approved", "payout_failed"}, Reserved: []string{"approved", "payout_failed"}, Paid: "paid"},
		{Name: "identity", Open: []string{"received", "manual_review"}},
	}
)

// fakeIndex answers Query on the by_status index of the case projection from a list of
// records, a page of at most Limit at a time; everything else (the case counters) goes to
// the embedded store.
type fakeIndex struct {
	store.DB
	records []contract.CaseRecord
	queries int
}

func (f *fakeIndex) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.queries++
	if *in.IndexName != "by_status" {
		return nil, errors.New("query outside the index")
	}
	status := in.ExpressionAttributeValues[":s"].(*types.AttributeValueMemberS).Value
	from := ""
	if d, ok := in.ExpressionAttributeValues[":d"]; ok {
		from = d.(*types.AttributeValueMemberS).Value
	}
	var match []contract.CaseRecord
	for _, r := range f.records {
		if r.Status == status && r.UpdatedAt.UTC().Format(time.RFC3339Nano) >= from {
			match = append(match, r)
		}
	}
	start := 0
	if in.ExclusiveStartKey != nil {
		// test-only cursor: the offset into the matches
		start, _ = strconv.Atoi(in.ExclusiveStartKey["offset"].(*types.AttributeValueMemberN).Value)
	}
	end := min(start+int(*in.Limit), len(match))
	out := &dynamodb.QueryOutput{}
	for _, r := range match[start:end] {
		av, err := store.Marshal(r)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, av)
	}
	if end < len(match) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"offset": &types.AttributeValueMemberN{Value: itoa(end)}}
	}
	return out, nil
}

// newCases is an index over an in-memory store whose records are written as steps (so
// the case counters are kept as in a deployment).
func newCases() (*fakeIndex, transition.Handler) {
	db := storetest.New(map[string]storetest.Key{"audit": {PK: "case_id", SK: "entry_id"}, "cases": {PK: "case_id"},
		"outbox": {PK: "notification_id"}, "counts": {PK: transition.CountKey}})
	return &fakeIndex{DB: db}, transition.Handler{DB: db, Journal: "audit", Cases: "cases", Outbox: "outbox", Counts: "counts"}
}

// put writes a case's first step and keeps its record for the index.
func (f *fakeIndex) put(t *testing.T, h transition.Handler, r contract.CaseRecord) {
	t.Helper()
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = time.Now()
	}
	r.Version = 1
	if _, err := h.Record(context.Background(), contract.RecordInput{CaseID: r.CaseID, Seq: 1, Case: &r}); err != nil {
		t.Fatal(err)
	}
	f.records = append(f.records, r)
}

func TestBusinessGauges(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) // a Monday
	cal := calendar.Shared()
	db, h := newCases()
	add := func(process, status string, deadline time.Time, amounts map[string]int64, updated time.Time) {
		db.put(t, h, contract.CaseRecord{CaseID: "refund-" + itoa(len(db.records)), Process: process, Status: status,
			Deadline: deadline, Amounts: amounts, UpdatedAt: updated})
	}
	add("refund", "received", now.AddDate(0, 0, 20), nil, now)                             // far
	add("refund", "received", now.Add(24*time.Hour), nil, now)                             // near
	add("refund", "approved", now.Add(-time.Hour), map[string]int64{"approved": 700}, now) // overdue, reserved
	add("refund", "payout_failed", time.Time{}, map[string]int64{"approved": 300}, now)    // reserved, no deadline
	add("refund", "paid", time.Time{}, map[string]int64{"paid": 1000}, now.Add(-time.Hour))
	add("refund", "paid", time.Time{}, map[string]int64{"paid": 5000}, now.AddDate(0, 0, -2)) // not today
	add("identity", "received", now.Add(2*time.Hour), nil, now)
	add("declaration", "received", now.Add(time.Hour), nil, now) // a process not configured: not counted
	// More than the 50,000 a run used to stop at, over several pages: counted exactly.
	for range 50_500 {
		add("identity", "manual_review", now.Add(-time.Minute), nil, now)
	}

	m := metrics.New(functions, routes)
	b := &metrics.Business{DB: db, Table: "cases", Index: "by_status", Counts: "counts", Processes: processes, Calendar: cal,
		Now: func() time.Time { return now }}
	b.Register(m)
	if err := b.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`taxflow_cases_open{process="refund",status="received"}`:        2,
		`taxflow_cases_open{process="refund",status="approved"}`:        1,
		`taxflow_cases_open{process="refund",status="payout_failed"}`:   1,
		`taxflow_cases_open{process="identity",status="received"}`:      1,
		`taxflow_cases_open{process="identity",status="manual_review"}`: 50_500,
		`taxflow_cases_deadline_near{process="refund"}`:                 1,
		`taxflow_cases_deadline_near{process="identity"}`:               1,
		`taxflow_cases_overdue{process="refund"}`:                       1,
		`taxflow_cases_overdue{process="identity"}`:                     50_500,
		`taxflow_payouts_today`:                                         1,
		`taxflow_paid_today_kopecks`:                                    1000,
		`taxflow_reserved_kopecks`:                                      1000,
	}
	got := samples(t, m)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["taxflow_business_truncated"]; ok {
		t.Error("taxflow_business_truncated is still served")
	}
	// One query per distinct open status (4) plus its pages, one for today's payouts.
	if db.queries != 4+50+1 {
		t.Errorf("%d queries", db.queries)
	}
}

// No personal data in labels: whatever the callers pass (a case id as a function name, a
// raw path with an INN, an odd status code, cases of unknown processes), every label
// value of taxflow's metrics comes from a closed set.
func TestLabelValuesComeFromClosedSets(t *testing.T) {
	m := metrics.New(functions, routes)
	const inn = "500100732259"
	m.ObserveInvocation("selfcheck", nil, time.Millisecond)
	m.ObserveInvocation("payout", &invoker.FunctionError{Function: "payout", Type: "Rejected", Message: "account of " + inn}, time.Millisecond)
	m.ObserveInvocation("payout", &invoker.FunctionError{Function: "payout", Type: "Runtime.Panic"}, time.Millisecond)
	m.ObserveInvocation("refund-"+inn, errors.New("dial tcp: refused"), time.Millisecond)
	m.ObserveRequest("POST /v1/refunds", 201, time.Millisecond)
	m.ObserveRequest("/v1/taxpayers/"+inn+"/consent", 404, time.Millisecond)
	m.ObserveRequest("", 999, time.Millisecond)
	db, h := newCases()
	db.put(t, h, contract.CaseRecord{CaseID: "x", Process: inn, Status: "received"})
	db.put(t, h, contract.CaseRecord{CaseID: "y", Process: "refund", Status: "received"})
	b := &metrics.Business{DB: db, Table: "cases", Index: "by_status", Counts: "counts", Processes: processes,
		Calendar: calendar.Shared(), Now: time.Now}
	b.Register(m)
	if err := b.Update(context.Background()); err != nil {
		t.Fatal(err)
	}

	closed := map[string][]string{
		"function": append(slices.Clone(functions), metrics.Other),
		"kind":     {"business", "function", "unreachable"},
		"route":    append(slices.Clone(routes), metrics.Other),
		"process":  {"refund", "identity"},
		"status":   {"received", "approved", "payout_failed", "manual_review"},
	}
	code := regexp.MustCompile(`^([1-5][0-9][0-9]|other)$`)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "taxflow_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				seen++
				if strings.Contains(l.GetValue(), inn) {
					t.Errorf("%s{%s=%q}: personal data in a label", f.GetName(), l.GetName(), l.GetValue())
				}
				if l.GetName() == "code" {
					if !code.MatchString(l.GetValue()) {
						t.Errorf("%s: code %q", f.GetName(), l.GetValue())
					}
					continue
				}
				set, ok := closed[l.GetName()]
				if !ok || !slices.Contains(set, l.GetValue()) {
					t.Errorf("%s{%s=%q}: not from a closed set", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if seen < 10 {
		t.Fatalf("only %d labels checked", seen)
	}
	got := samples(t, m)
	for k, v := range map[string]float64{
		`taxflow_function_invocations_total{function="other"}`:               1,
		`taxflow_function_errors_total{function="other",kind="unreachable"}`: 1,
		`taxflow_function_errors_total{function="payout",kind="business"}`:   1,
		`taxflow_function_errors_total{function="payout",kind="function"}`:   1,
		`taxflow_api_requests_total{code="404",route="other"}`:               1,
		`taxflow_api_requests_total{code="other",route="other"}`:             1,
		`taxflow_api_requests_total{code="201",route="POST /v1/refunds"}`:    1,
		`taxflow_cases_open{process="refund",status="received"}`:             1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// The Temporal SDK's metrics land in the same registry, under Prometheus names.
func TestTemporalSDKMetricsInTheRegistry(t *testing.T) {
	m := metrics.New(functions, routes)
	h, closeFn := m.TemporalHandler()
	h.WithTags(map[string]string{"task_queue": "taxflow"}).Counter("temporal_request").Inc(2)
	h.Timer("temporal_activity_schedule_to_start_latency").Record(30 * time.Millisecond)
	if err := closeFn(); err != nil { // flushes
		t.Fatal(err)
	}
	got := samples(t, m)
	if got[`temporal_request_total{task_queue="taxflow"}`] != 2 {
		t.Errorf("temporal_request_total: %v", got)
	}
	if got[`temporal_activity_schedule_to_start_latency_seconds_count`] != 1 {
		t.Errorf("schedule-to-start histogram: %v", keys(got, "temporal_activity"))
	}
}

// samples flattens the registry into "name{labels}" → value (histograms: _count).
func samples(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] = s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[strings.Replace(name, f.GetName(), f.GetName()+"_count", 1)] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func keys(m map[string]float64, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
