package sizing

import "time"

// Figures are what `taxflow bench --per-case` writes: per process, the averages over
// its cases. docs/sizing.md is made from them (Render).
type Figures struct {
	Command   string    `json:"command"`   // the command that measured them
	Generated time.Time `json:"generated"` // when
	Stack     string    `json:"stack"`     // what they were measured on
	// CapacityNote says where the DynamoDB capacity units come from.
	CapacityNote string    `json:"capacity_note"`
	NotIncluded  []string  `json:"not_included"`
	Processes    []Process `json:"processes"`
	// BenchRefundEvents: the history events of the refund `make bench-cluster` runs (the
	// README's CPU per refund is for it).
	BenchRefundEvents int `json:"bench_refund_events"`
}

// Process is the average case of one process (every figure per case).
type Process struct {
	Name  string `json:"name"`
	Path  string `json:"path"` // the states a case went through
	Cases int    `json:"cases"`

	HistoryEvents    float64            `json:"history_events"`
	HistoryBytes     float64            `json:"history_bytes"`
	WorkflowTasks    float64            `json:"workflow_tasks"`
	ActivityTasks    float64            `json:"activity_tasks"`
	ActivityAttempts float64            `json:"activity_attempts"`
	LocalActivities  float64            `json:"local_activities"`
	Timers           float64            `json:"timers"`
	Signals          float64            `json:"signals"`
	Updates          float64            `json:"updates"`
	Upserts          float64            `json:"search_attribute_upserts"`
	Children         float64            `json:"child_workflows"`
	Actions          float64            `json:"actions"`
	ActionsByRule    map[string]float64 `json:"actions_by_rule"`
	WorkflowStarts   float64            `json:"workflow_starts"`

	Invocations       float64            `json:"function_invocations"`
	FunctionSeconds   float64            `json:"function_seconds"` // all invocations of a case, in process
	ByFunction        map[string]float64 `json:"invocations_by_function"`
	SecondsByFunction map[string]float64 `json:"seconds_by_function"`

	DynamoReads  float64            `json:"dynamodb_reads"`
	DynamoWrites float64            `json:"dynamodb_writes"`
	ReadUnits    float64            `json:"read_units"`
	WriteUnits   float64            `json:"write_units"`
	DynamoByOp   map[string]float64 `json:"dynamodb_by_operation"`
	NoCapacity   float64            `json:"answers_without_capacity"`
	// DynamoBytes: what the tables grew by per case (DescribeTable's TableSizeBytes after
	// the process's cases less before; 0 when not measured).
	DynamoBytes    float64            `json:"dynamodb_bytes"`
	FailedRequests float64            `json:"failed_requests"`
	S3Requests     float64            `json:"s3_requests"`
	S3ByOp         map[string]float64 `json:"s3_by_operation"`
	S3PutBytes     float64            `json:"s3_put_bytes"`
	WallSeconds    float64            `json:"wall_seconds"` // from the first request to the last state, bench conditions
}

// Case is one measured case.
type Case struct {
	ID      string
	History History
	Usage   Usage
	Wall    time.Duration
}

// Average makes the average case of a process from its cases.
func Average(name, path string, cases []Case) Process {
	p := Process{Name: name, Path: path, Cases: len(cases), ActionsByRule: map[string]float64{}, ByFunction: map[string]float64{},
		SecondsByFunction: map[string]float64{}, DynamoByOp: map[string]float64{}, S3ByOp: map[string]float64{}}
	if len(cases) == 0 {
		return p
	}
	n := float64(len(cases))
	for _, c := range cases {
		h, u, a := c.History, c.Usage, c.History.Actions
		p.HistoryEvents += float64(h.Events) / n
		p.HistoryBytes += float64(h.Bytes) / n
		p.WorkflowTasks += float64(h.WorkflowTasks) / n
		p.ActivityTasks += float64(h.ActivityTasks) / n
		p.ActivityAttempts += float64(h.ActivityAttempt) / n
		p.LocalActivities += float64(h.LocalActivities) / n
		p.Timers += float64(h.Timers) / n
		p.Signals += float64(h.Signals) / n
		p.Updates += float64(h.Updates) / n
		p.Upserts += float64(h.Upserts) / n
		p.Children += float64(h.Children) / n
		p.Actions += float64(a.Total) / n
		p.WorkflowStarts += float64(a.WorkflowStarted+a.Children/2) / n
		for rule, v := range a.ByRule() {
			p.ActionsByRule[rule] += float64(v) / n
		}
		p.Invocations += float64(Sum(u.Functions)) / n
		p.FunctionSeconds += u.FunctionTime.Seconds() / n
		for k, v := range u.Functions {
			p.ByFunction[k] += float64(v) / n
		}
		for k, v := range u.FunctionTimes {
			p.SecondsByFunction[k] += v.Seconds() / n
		}
		p.DynamoReads += float64(u.Reads()) / n
		p.DynamoWrites += float64(u.Writes()) / n
		p.ReadUnits += u.ReadUnits / n
		p.WriteUnits += u.WriteUnits / n
		for k, v := range u.DynamoDB {
			p.DynamoByOp[k] += float64(v) / n
		}
		p.NoCapacity += float64(u.NoCapacity) / n
		p.FailedRequests += float64(u.Failed) / n
		p.S3Requests += float64(Sum(u.S3)) / n
		for k, v := range u.S3 {
			p.S3ByOp[k] += float64(v) / n
		}
		p.S3PutBytes += float64(u.S3PutBytes) / n
		p.WallSeconds += c.Wall.Seconds() / n
	}
	return p
}

// ByRule names each rule's count (the names of docs.temporal.io/cloud/actions).
func (a Actions) ByRule() map[string]int {
	return map[string]int{
		"Workflow started": a.WorkflowStarted, "Activity started or retried": a.ActivityAttempts,
		"Local Activity started (per workflow task)": a.LocalActivities, "Timer started": a.Timers,
		"Signal sent": a.Signals, "Update received by Worker": a.Updates, "Search Attribute upsert requested": a.Upserts,
		"Side Effect recorded": a.SideEffects, "Start Child Workflow + Child Workflow Execution": a.Children,
		"Workflow Execution Options updated": a.OptionsUpdated,
	}
}
