// Package infra is the one declaration of taxflow's tables, buckets and functions, and
// the code that applies it to any endpoint (AWS, LocalStack, the local stack). The AWS
// deployment template (template.yaml) is generated from the same declaration.
package infra

import (
	"sort"
	"strings"

	"github.com/taxflow/taxflow/functions/bankcheck"
	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/selfcheck"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/functions/webhooks"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/internal/trust"
)

// Key is a key attribute: its name and DynamoDB type ("S" or "N").
type Key struct {
	Name string
	Type string
}

// Index is a global secondary index (projection ALL).
type Index struct {
	Name         string
	PartitionKey Key
	SortKey      *Key
}

// Table is a DynamoDB table, billed per request.
type Table struct {
	Name         string // logical; deployed as <prefix>-<name>
	PartitionKey Key
	SortKey      *Key
	Indexes      []Index
	TTLAttribute string // "" for none
}

// LifecycleRule expires objects under a prefix after a number of days.
type LifecycleRule struct {
	ID         string
	Prefix     string
	ExpireDays int32 // expire current objects under Prefix after this many days (0: never)
	// AbortMultipartDays aborts multipart uploads left incomplete this many days after they
	// began (0: never). The API streams uploads to S3 in parts; a client that disconnects
	// mid-upload leaves parts that are billed and invisible to listings until aborted.
	AbortMultipartDays int32
}

// Bucket is an S3 bucket with default encryption and public access blocked.
type Bucket struct {
	Name       string // logical; deployed as <prefix>-<name>
	Encryption string // "AES256" (SSE-S3)
	Lifecycle  []LifecycleRule
	// Versioned keeps overwritten and deleted objects (recoverable); old versions expire
	// after NoncurrentDays. The template sets it; the local stack's MinIO runs without.
	Versioned      bool
	NoncurrentDays int32
	// ReadOnly: no function may write it, whatever it declares. The template denies every
	// write to the bucket and its objects in every function's role (an explicit Deny wins
	// over any Allow) and in the bucket's policy, and refuses a declaration that grants one.
	// The trust anchors' bucket: an operator writes it (`taxflow trust put`).
	ReadOnly bool
	// Guarded: prefixes of the bucket that only the named functions may write. Every other
	// function's role gets an explicit Deny of every write under the prefix (whatever it
	// may write elsewhere in the bucket), and the bucket's policy denies the same to each
	// of those roles.
	Guarded []Guard
}

// Guard is a prefix of a bucket and the only functions (by name; the API is "api") that
// may write under it.
type Guard struct {
	Prefix  string
	Writers []string
}

// Access is what a function may do to a table or a bucket; its IAM policy grants exactly
// Actions (DynamoDB or S3 action names without the service prefix: "GetItem",
// "PutObject"). Without Actions, Write picks a broad default, which the grants test
// refuses wherever the code does not call all of it.
type Access struct {
	Table   string // logical table name, or
	Bucket  string // logical bucket name
	Write   bool
	Actions []string
}

// Function is a Lambda function built from a Go package.
type Function struct {
	Name       string // logical; deployed as <prefix>-<name>
	Package    string // Go package of its lambda/main.go
	MemoryMB   int32
	TimeoutSec int32
	Env        map[string]string
	Uses       []Access
	// Temporal: the function starts workflows, so it gets the Temporal connection and the
	// payload key (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TAXFLOW_PAYLOAD_KEY,
	// TAXFLOW_TASK_QUEUE). Only the intake does.
	Temporal bool
	// PayloadKey: the function gets TAXFLOW_PAYLOAD_KEY without the rest of the Temporal
	// connection: it opens what the API sealed with it (webhook signing secrets).
	PayloadKey bool
	// LoopbackReceivers: the function gets TAXFLOW_WEBHOOK_ALLOW_LOOPBACK where the
	// apply's environment sets it (the local stack: receivers on this machine); the AWS
	// template never sets it.
	LoopbackReceivers bool
	// Trigger: the bucket invokes the function for every object created under a prefix.
	Trigger *S3Trigger
}

// S3Trigger is an object-created notification of a bucket to a function: on AWS a
// Lambda notification (the template's S3 event); on the local stack a MinIO webhook
// target that posts the same event to the Lambda host (Options.NotifyARN).
type S3Trigger struct {
	Bucket string // logical bucket name
	Prefix string
}

// API is the HTTP API deployed with the template (API Gateway HTTP API in front of the
// API's Lambda); the local stack serves it with `taxflow api` instead.
type API struct {
	Function        Function
	ThrottleRate    float64 // steady requests per second, across all callers
	ThrottleBurst   int32
	LogRetentionDay int32
}

// Declaration is everything taxflow needs in an account.
type Declaration struct {
	Tables    []Table
	Buckets   []Bucket
	Functions []Function
	API       API
}

// stepGrants are what writing a case's step needs (functions/transition): a conditional
// put of each item and a read-back of the one that refused it (and of the projection the
// step follows), the ADD of the case counters, the case's owner (written by its first step,
// read when a step puts it in a human step: its tenant's task list), and the step's integrator event (a
// conditional put, read back like the others). No DeleteItem, and UpdateItem only on
// the counters: a committed step is never changed or deleted.
func stepGrants() []Access {
	return []Access{{Table: audit.Table, Actions: []string{"GetItem", "PutItem"}}, {Table: cases.Table, Actions: []string{"GetItem", "PutItem"}},
		{Table: notify.Table, Actions: []string{"GetItem", "PutItem"}}, {Table: transition.CountsTable, Actions: []string{"UpdateItem"}},
		{Table: "case_owners", Actions: []string{"GetItem", "PutItem"}}, {Table: events.Table, Actions: []string{"GetItem", "PutItem"}}}
}

// Declare returns taxflow's resources.
func Declare() Declaration {
	s := func(n string) Key { return Key{Name: n, Type: "S"} }
	sk := func(n string) *Key { k := s(n); return &k }
	nk := func(n string) *Key { return &Key{Name: n, Type: "N"} }
	return Declaration{
		Tables: []Table{
			{Name: audit.Table, PartitionKey: s("case_id"), SortKey: sk("entry_id")},
			// Idempotency records of steps with an effect; old ones expire.
			{Name: selfcheck.Table, PartitionKey: s("key"), TTLAttribute: "expires_at"},
			// Case projection for fast reads; by_status lists a queue of cases. by_task and
			// by_tenant_task are sparse: only a case waiting in a human step carries their
			// keys (internal/tasks), the staff task list ordered by deadline.
			{Name: cases.Table, PartitionKey: s("case_id"), Indexes: []Index{
				{Name: "by_status", PartitionKey: s("status"), SortKey: sk("updated_at")},
				{Name: tasks.Index, PartitionKey: s(tasks.AttrRole), SortKey: sk(tasks.AttrDue)},
				{Name: tasks.TenantIndex, PartitionKey: s(tasks.AttrTenantRole), SortKey: sk(tasks.AttrDue)},
				// The same, for escalated cases only: the escalated task list is a key condition.
				{Name: tasks.EscalatedIndex, PartitionKey: s(tasks.AttrEscRole), SortKey: sk(tasks.AttrDue)},
				{Name: tasks.TenantEscalatedIndex, PartitionKey: s(tasks.AttrEscTenantRole), SortKey: sk(tasks.AttrDue)},
			}},
			// Case counters per process, status and shard, kept by each step's transaction:
			// the business gauges' open counts and reserved amount.
			{Name: transition.CountsTable, PartitionKey: s(transition.CountKey)},
			{Name: taxpayer.Table, PartitionKey: s("inn")},
			{Name: overpayment.Table, PartitionKey: s("inn"), SortKey: sk("entry_id")},
			{Name: payout.Table, PartitionKey: s("payout_key")},
			// The refund ledger: balances (reserved + paid ≤ refundable) and reservations.
			{Name: ledger.Table, PartitionKey: s("key")},
			{Name: notify.Table, PartitionKey: s("notification_id"), Indexes: []Index{
				{Name: delivery.Index, PartitionKey: s("state"), SortKey: sk("at")},
			}},
			// What the notification channels received, once per notification id.
			{Name: delivery.Table, PartitionKey: s("notification_id")},
			// Tax obligations; by_due finds those due on a day (partition: the month).
			{Name: reminders.Table, PartitionKey: s("obligation_id"), Indexes: []Index{
				{Name: reminders.Index, PartitionKey: s("due_month"), SortKey: sk("due_date")},
			}},
			// API keys of integrators and staff, stored as SHA-256 hashes.
			{Name: "apikeys", PartitionKey: s("key_hash")},
			// The tenant that owns each case (api.OwnersTable): other tenants' reads answer 404.
			{Name: "case_owners", PartitionKey: s("case_id")},
			// The API's short-lived records (api.IdempotencyTable: challenge nonces, attempt
			// counters); they expire. A create's Idempotency-Key is its case's id (api/create.go).
			{Name: "api_idempotency", PartitionKey: s("key"), TTLAttribute: "expires_at"},
			// Integrator events (internal/events): one per committed transition, written with
			// it; by_state lists the pending ones oldest first for the relay (sparse: the relay
			// removes "at"). The feed: each tenant's events numbered 1, 2, 3… Both expire.
			{Name: events.Table, PartitionKey: s("case_id"), SortKey: nk("seq"), TTLAttribute: "expires_at", Indexes: []Index{
				{Name: events.ByState, PartitionKey: s("state"), SortKey: sk("at")},
			}},
			{Name: events.FeedTable, PartitionKey: s("tenant"), SortKey: nk("pos"), TTLAttribute: "expires_at"},
			// Webhook endpoints and each tenant's list of them (functions/webhooks); deliveries
			// per endpoint by feed position, kept as long as the feed.
			{Name: webhooks.Table, PartitionKey: s("endpoint_id")},
			{Name: webhooks.DeliveriesTable, PartitionKey: s("endpoint_id"), SortKey: &Key{Name: "pos", Type: "N"}, TTLAttribute: "expires_at"},
			// Staff of the console (api.StaffTable): bcrypt password hashes and lockouts.
			{Name: "staff_accounts", PartitionKey: s("login")},
			// Console sessions (api.SessionsTable), by the SHA-256 of the cookie; they expire.
			{Name: "staff_sessions", PartitionKey: s("session_hash"), TTLAttribute: "expires_at"},
		},
		Buckets: []Bucket{{
			Name:           document.Bucket,
			Encryption:     "AES256",
			Versioned:      true,
			NoncurrentDays: 30,
			Lifecycle: []LifecycleRule{
				// Uploads never confirmed by a step are removed after a day.
				{ID: "expire-incomplete-uploads", Prefix: "incoming/", ExpireDays: 1},
				{ID: "abort-incomplete-multipart", AbortMultipartDays: 1},
				// Generated documents stay in the cabinet for 30 days [004:169].
				{ID: "expire-generated", Prefix: "generated/", ExpireDays: 30},
				// A batch's parsed chunks and per-line results, kept while its report is read.
				{ID: "expire-batch-work", Prefix: "batches/", ExpireDays: 30},
			},
			// A batch file's grant names the key (its scopes) its lines are judged with: only
			// the API, which issues the upload URL, writes one. A document, decision-pdf or
			// batch role that could would give any file any uploader.
			Guarded: []Guard{{Prefix: batch.GrantsPrefix, Writers: []string{"api"}}},
		}, {
			// The trust anchors (internal/trust): e-signature roots and CRL, partner bank keys.
			// Read by the e-signature and bank checks; written by operators only.
			Name: trust.Bucket, Encryption: "AES256", Versioned: true, NoncurrentDays: 365, ReadOnly: true,
		}},
		Functions: []Function{
			// One step of a case's record: journal, projection and outbox in one transaction.
			{Name: contract.FnRecordTransition, Package: "./functions/transition/lambda", MemoryMB: 128, TimeoutSec: 10,
				Uses: stepGrants()},
			// The events relay: pending events into their tenants' feeds, in each case's order.
			{Name: events.FnRelay, Package: "./functions/eventrelay/lambda", MemoryMB: 128, TimeoutSec: 45,
				Uses: []Access{{Table: events.Table, Actions: []string{"Query", "UpdateItem"}},
					{Table: events.FeedTable, Actions: []string{"GetItem", "PutItem", "UpdateItem"}}, {Table: "case_owners", Actions: []string{"GetItem"}}}},
			{Name: contract.FnOutboxDeliver, Package: "./functions/delivery/lambda", MemoryMB: 128, TimeoutSec: 120,
				Uses: []Access{{Table: notify.Table, Actions: []string{"Query", "UpdateItem"}}, {Table: delivery.Table, Actions: []string{"PutItem"}}}},
			// The reservation's transaction carries the case's `approved` step: the record
			// function's grants on the journal, projection and outbox (never Update or Delete).
			// A desk review's decision writes its reduction of the tax charged to the charges
			// and payments ledger with its step (assess): a conditional Put, read back on a retry.
			{Name: contract.FnLedger, Package: "./functions/ledger/lambda", MemoryMB: 128, TimeoutSec: 10,
				Uses: append([]Access{{Table: overpayment.Table, Actions: []string{"Query", "GetItem", "PutItem"}}, {Table: ledger.Table, Actions: []string{"GetItem", "PutItem", "Scan"}}},
					stepGrants()...)},
			// Destroys a case's documents when consent is withdrawn for good (152-FZ art. 21 p.5).
			{Name: contract.FnCaseDocumentsDelete, Package: "./functions/casedocs/lambda", MemoryMB: 128, TimeoutSec: 60,
				Uses: []Access{{Bucket: document.Bucket, Actions: []string{"ListBucket", "DeleteObject"}}}},
			{Name: contract.FnObligationSweep, Package: "./functions/obligations/lambda", MemoryMB: 256, TimeoutSec: 120,
				Uses: []Access{{Table: overpayment.Table, Actions: []string{"Query", "Scan"}}, {Table: reminders.Table, Actions: []string{"GetItem", "PutItem", "Query"}}}},
			{Name: contract.FnSelfCheck, Package: "./functions/selfcheck/lambda", MemoryMB: 128, TimeoutSec: 3,
				Uses: []Access{{Table: selfcheck.Table, Actions: []string{"UpdateItem"}}}},
			{Name: contract.FnTaxpayerCheck, Package: "./functions/taxpayer/lambda", MemoryMB: 128, TimeoutSec: 10,
				Uses: []Access{{Table: taxpayer.Table, Actions: []string{"GetItem"}}}},
			{Name: contract.FnOverpayment, Package: "./functions/overpayment/lambda", MemoryMB: 256, TimeoutSec: 30,
				Uses: []Access{{Table: overpayment.Table, Actions: []string{"Query"}}}},
			{Name: contract.FnDocumentStore, Package: "./functions/document/lambda", MemoryMB: 512, TimeoutSec: 60,
				Uses: []Access{{Bucket: document.Bucket, Actions: []string{"GetObject", "PutObject", "DeleteObject"}}}},
			// The posting's transaction carries the case's `paid` step.
			{Name: contract.FnPayout, Package: "./functions/payout/lambda", MemoryMB: 128, TimeoutSec: 20,
				Uses: append([]Access{{Table: taxpayer.Table, Actions: []string{"GetItem"}}, {Table: payout.Table, Actions: []string{"GetItem", "PutItem"}},
					{Table: ledger.Table, Actions: []string{"GetItem", "PutItem"}}}, stepGrants()...)},
			{Name: contract.FnIdentityMatch, Package: "./functions/identity/lambda", MemoryMB: 256, TimeoutSec: 30,
				Uses: []Access{{Table: taxpayer.Table, Actions: []string{"GetItem"}}, {Bucket: document.Bucket, Actions: []string{"GetObject"}}}},
			{Name: contract.FnIdentityConfirm, Package: "./functions/identityconfirm/lambda", MemoryMB: 128, TimeoutSec: 10,
				Uses: []Access{{Table: taxpayer.Table, Actions: []string{"UpdateItem"}}}},
			// The registry's INN and SNILS bind the certificate; the API's challenges, to check
			// that the proof of possession was spent for the case.
			{Name: contract.FnESignCheck, Package: "./functions/esigncheck/lambda", MemoryMB: 128, TimeoutSec: 15,
				Uses: []Access{{Bucket: trust.Bucket, Actions: []string{"GetObject"}}, {Table: taxpayer.Table, Actions: []string{"GetItem"}},
					{Table: bankcheck.NonceTable, Actions: []string{"GetItem"}}}},
			// Partner bank keys next to the e-signature roots; the API's challenges, spent once.
			{Name: contract.FnBankCheck, Package: "./functions/bankcheck/lambda", MemoryMB: 128, TimeoutSec: 15,
				Uses: []Access{{Bucket: trust.Bucket, Actions: []string{"GetObject"}},
					{Table: bankcheck.NonceTable, Actions: []string{"GetItem", "PutItem"}}}},
			{Name: contract.FnUnblockCheck, Package: "./functions/unblock/lambda", MemoryMB: 128, TimeoutSec: 10,
				Uses: []Access{{Table: taxpayer.Table, Actions: []string{"GetItem"}}}},
			{Name: contract.FnIdentityClear, Package: "./functions/identityclear/lambda", MemoryMB: 128, TimeoutSec: 10,
				Uses: []Access{{Table: taxpayer.Table, Actions: []string{"UpdateItem"}}}},
			{Name: contract.FnDeclarationCheck, Package: "./functions/declaration/lambda", MemoryMB: 256, TimeoutSec: 30,
				Uses: []Access{{Bucket: document.Bucket, Actions: []string{"GetObject"}}}},
			{Name: contract.FnDecisionPDF, Package: "./functions/decisionpdf/lambda", MemoryMB: 256, TimeoutSec: 30,
				Uses: []Access{{Bucket: document.Bucket, Actions: []string{"PutObject"}}}},
			{Name: contract.FnReminderSweep, Package: "./functions/reminders/lambda", MemoryMB: 256, TimeoutSec: 120,
				Uses: []Access{{Table: reminders.Table, Actions: []string{"Query"}}, {Table: taxpayer.Table, Actions: []string{"GetItem"}}, {Table: notify.Table, Actions: []string{"PutItem"}}}},
			{Name: contract.FnInactiveSweep, Package: "./functions/inactive/lambda", MemoryMB: 256, TimeoutSec: 120,
				Uses: []Access{{Table: taxpayer.Table, Actions: []string{"Scan", "UpdateItem"}}, {Table: notify.Table, Actions: []string{"PutItem"}}}},
			// The inbox's object-created events start BatchImport workflows.
			{Name: contract.FnIntake, Package: "./functions/intake/lambda", MemoryMB: 128, TimeoutSec: 30, Temporal: true,
				Trigger: &S3Trigger{Bucket: document.Bucket, Prefix: "inbox/"}},
			// Back-office batch files: parse, keep chunks and results, report, move, journal.
			{Name: contract.FnBatch, Package: "./functions/batch/lambda", MemoryMB: 1024, TimeoutSec: 300,
				Uses: []Access{{Bucket: document.Bucket, Actions: []string{"GetObject", "PutObject", "DeleteObject"}},
					{Table: "case_owners", Actions: []string{"PutItem"}}, {Table: audit.Table, Actions: []string{"PutItem"}},
					{Table: events.Table, Actions: []string{"PutItem"}}}},
			// One round of a webhook endpoint: the tenant's feed into deliveries, due ones sent.
			// It opens the endpoint's sealed signing secret with the payload key.
			{Name: contract.FnWebhookDeliver, Package: "./functions/webhooks/lambda", MemoryMB: 256, TimeoutSec: 60, PayloadKey: true, LoopbackReceivers: true,
				Uses: []Access{{Table: webhooks.Table, Actions: []string{"GetItem", "PutItem"}},
					{Table: webhooks.DeliveriesTable, Actions: []string{"Query", "PutItem"}},
					{Table: events.FeedTable, Actions: []string{"Query"}}, {Table: notify.Table, Actions: []string{"PutItem"}}}},
			{Name: contract.FnRetentionSweep, Package: "./functions/retention/lambda", MemoryMB: 128, TimeoutSec: 120,
				Uses: []Access{{Bucket: document.Bucket, Actions: []string{"ListBucket", "DeleteObject"}}}},
		},
		API: API{
			Function: Function{Name: "api", Package: "./api/lambda", MemoryMB: 256, TimeoutSec: 29,
				Uses: []Access{
					{Table: "apikeys", Actions: []string{"GetItem", "UpdateItem"}},
					{Table: "case_owners", Actions: []string{"GetItem", "PutItem"}},
					{Table: "api_idempotency", Actions: []string{"GetItem", "PutItem", "UpdateItem"}},
					{Table: "staff_accounts", Actions: []string{"GetItem", "UpdateItem"}},
					{Table: "staff_sessions", Actions: []string{"GetItem", "PutItem", "UpdateItem"}},
					{Table: taxpayer.Table, Actions: []string{"GetItem", "UpdateItem"}},
					{Table: audit.Table, Actions: []string{"Query"}},
					{Table: overpayment.Table, Actions: []string{"Query"}},
					// The task list: the cases table's by_task and by_tenant_task indexes.
					{Table: cases.Table, Actions: []string{"Query"}},
					// GET /v1/events: the caller's tenant's feed; a new webhook endpoint starts at its end (the counter item).
					{Table: events.FeedTable, Actions: []string{"GetItem", "Query"}},
					// Webhook endpoints (the console of unbound staff lists every tenant's) and deliveries.
					{Table: webhooks.Table, Actions: []string{"GetItem", "PutItem", "Scan"}},
					{Table: webhooks.DeliveriesTable, Actions: []string{"GetItem", "PutItem", "Query"}},
					{Bucket: document.Bucket, Actions: []string{"GetObject", "PutObject"}},
				}},
			ThrottleRate: 50, ThrottleBurst: 100, LogRetentionDay: 90,
		},
	}
}

// Name is the deployed name of a logical resource.
func Name(prefix, logical string) string { return prefix + "-" + logical }

// FunctionEnv is the environment every deployed function gets, plus its own.
func FunctionEnv(prefix string, f Function) map[string]string {
	env := map[string]string{"TAXFLOW_PREFIX": prefix}
	for k, v := range f.Env {
		env[k] = v
	}
	return env
}

// attributes lists a table's key attributes (table and index keys), sorted and unique.
func (t Table) attributes() []Key {
	seen := map[string]Key{t.PartitionKey.Name: t.PartitionKey}
	if t.SortKey != nil {
		seen[t.SortKey.Name] = *t.SortKey
	}
	for _, ix := range t.Indexes {
		seen[ix.PartitionKey.Name] = ix.PartitionKey
		if ix.SortKey != nil {
			seen[ix.SortKey.Name] = *ix.SortKey
		}
	}
	out := make([]Key, 0, len(seen))
	for _, k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// camel turns "audit-append" into "AuditAppend" for template logical ids.
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
