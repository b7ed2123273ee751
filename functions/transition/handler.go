// Package transition records one step of a case — its journal entries, the new version
// of its read projection and its outbox notifications — in one DynamoDB
// TransactWriteItems, so that the three can never disagree: a crash leaves either all of
// them or none.
//
// The step's idempotency key is "<case id>/<seq>", seq being the case's transition
// sequence that the workflow carries (across continue-as-new too). Every item written
// carries the key and a digest of the step's content. Each item is conditional:
// journal entries and notifications are written once, the projection only over the
// version before (optimistic versioning). When a condition fails, the first item that
// failed tells what happened: it carries this key and digest (the step was written
// before: a retry, answered as a duplicate), this key with another digest (the key was
// used for other content: KeyReused, a bug to surface), or another key (the projection
// is not at the version this step follows: Conflict).
//
// A committed step is never changed or deleted: a step is written by an activity task,
// whose input is fixed in the workflow's history when it is scheduled, so every retry
// carries the same content and the conditional put plus the digest is the whole protocol.
// What turns out not to have counted is a new step that says so, never an edit.
//
// A step can also ride in another operation's transaction (Prepare, Step.Puts,
// Step.Explain): the ledger's reservation carries the `approved` step and the payout's
// posting the `paid` step, with exactly the items, conditions and digest Record writes,
// so either path recognises the other's write as the same step.
package transition

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

// Attributes every item of a step carries.
const (
	AttrKey    = "record_key"
	AttrDigest = "record_digest"
)

// Handler writes steps. The tables are the deployed names of audit.Table, cases.Table,
// notify.Table and CountsTable. Counts "" keeps no case counters (unit tests of other
// packages); a deployment always names it (functions/catalog). Owners is case_owners,
// written by a case's first step when it carries the owner, and read to put a case that
// enters a human step in its tenant's task list ("": no owner written, no tenant lookup,
// the case is listed to unbound staff only). Events is the integrator events'
// table (internal/events): every step with a projection writes its event there, pending
// for the relay ("": no events, unit tests of other packages; a deployment always names
// it).
type Handler struct {
	DB      store.DB
	Journal string
	Cases   string
	Outbox  string
	Counts  string
	Owners  string
	Events  string
}

const (
	maxField = 512
	maxItems = 100 // DynamoDB's limit of items in one transaction
)

// item is one write of the transaction and where to read it back.
type item struct {
	table  string
	key    map[string]types.AttributeValue
	put    *types.Put
	update *types.Update // a case counter (put nil): never conditional, never explained
}

// Record writes the step, or recognises it as written before.
func (h Handler) Record(ctx context.Context, in contract.RecordInput) (contract.RecordResult, error) {
	tenant, err := h.tenant(ctx, in)
	if err != nil {
		return contract.RecordResult{}, err
	}
	s, err := h.prepare(ctx, in, tenant)
	if err != nil {
		return contract.RecordResult{}, err
	}
	_, err = h.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: s.Puts()})
	if err == nil {
		return contract.RecordResult{Key: s.Key}, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return contract.RecordResult{}, fmt.Errorf("record %s: %w", s.Key, err)
	}
	res, mine, err := s.Explain(ctx, tce.CancellationReasons, 0)
	if !mine { // no condition failed: a conflict with a concurrent transaction, throttling
		return contract.RecordResult{}, fmt.Errorf("record %s: transaction cancelled (%s)", s.Key, codes(tce.CancellationReasons))
	}
	return res, err
}

// Step is a validated step ready to be written: its key, its digest and its items. It
// lets another operation write the step in its own transaction (the ledger's
// reservation, the payout's posting), with exactly the items and conditions Record
// writes, and explain a cancellation of that transaction as Record would.
type Step struct {
	In     contract.RecordInput
	Key    string
	Digest string
	h      Handler
	items  []item
}

// Prepare validates the step and computes its key, digest and items; it writes nothing.
// With case counters (Counts), it reads the projection the step follows, for the status
// the step's counters move the case out of. The steps that ride in other operations'
// transactions (approved, paid, decided) are no human steps, so they need no tenant; a
// human step prepared here would be listed to unbound staff only (Record looks its
// tenant up).
func (h Handler) Prepare(ctx context.Context, in contract.RecordInput) (Step, error) {
	return h.prepare(ctx, in, "")
}

// tenant is the owner of a case whose step puts it in a human step of a tenant-owned
// process ("" otherwise, or when the case has no owner). The first step carries the
// owner it writes (RecordInput.Owner); a later one reads the row that step wrote (or that
// was written before the case started, for cases older than that), which never changes,
// so every retry of a step reads the same tenant.
func (h Handler) tenant(ctx context.Context, in contract.RecordInput) (string, error) {
	if in.Case == nil || h.Owners == "" {
		return "", nil
	}
	if in.Owner != nil { // the first step writes the owner: it is the one
		return in.Owner.Tenant, nil
	}
	rec := *in.Case
	rec.CaseID = in.CaseID
	if !tasks.NeedsOwner(rec) {
		return "", nil
	}
	tenant, _, _, err := tasks.CaseOwner(ctx, h.DB, h.Owners, in.CaseID)
	if err != nil {
		return "", fmt.Errorf("record %s: read the case's owner for its task list: %w", contract.RecordKey(in.CaseID, in.Seq), err)
	}
	return tenant, nil
}

func (h Handler) prepare(ctx context.Context, in contract.RecordInput, tenant string) (Step, error) {
	if err := validate(in); err != nil {
		return Step{}, err
	}
	key := contract.RecordKey(in.CaseID, in.Seq)
	digest, err := Digest(in)
	if err != nil {
		return Step{}, err
	}
	items, err := h.items(in, key, digest, tenant)
	if err != nil {
		return Step{}, err
	}
	if len(items) > maxItems {
		return Step{}, fnerr.Invalid("entries", fmt.Sprintf("with its event a step writes at most %d items, not %d", maxItems, len(items)))
	}
	if h.Counts != "" && in.Case != nil {
		p, err := h.before(ctx, in)
		if err != nil {
			return Step{}, err
		}
		if !p.known {
			for _, it := range items {
				if it.table == h.Cases {
					it.put.ConditionExpression = aws.String(*it.put.ConditionExpression + unknownPrior)
				}
			}
		} else {
			items = append(items, h.counters(in, p)...)
		}
		if len(items) > maxItems {
			return Step{}, fnerr.Invalid("entries", fmt.Sprintf("with its case counters a step writes at most %d items, not %d", maxItems, len(items)))
		}
	}
	return Step{In: in, Key: key, Digest: digest, h: h, items: items}, nil
}

// Len is the number of items the step writes.
func (s Step) Len() int { return len(s.items) }

// Puts are the step's conditional writes, in the order Explain expects them (appended
// at one offset of the caller's transaction). Each call returns new values.
func (s Step) Puts() []types.TransactWriteItem {
	tx := make([]types.TransactWriteItem, len(s.items))
	for i, it := range s.items {
		if it.update != nil {
			update := *it.update
			tx[i] = types.TransactWriteItem{Update: &update}
			continue
		}
		put := *it.put
		tx[i] = types.TransactWriteItem{Put: &put}
	}
	return tx
}

// Reason is the step's first journal entry's reason ("" without entries).
func (s Step) Reason() string {
	if len(s.In.Entries) == 0 {
		return ""
	}
	return s.In.Entries[0].Reason
}

// Explain tells what a cancelled transaction that carried the step's Puts at offset
// means for the step. reasons are the transaction's cancellation reasons, one per item
// in order. mine is false when none of the step's items failed its condition (the
// caller's own items did, or the transaction lost to a concurrent one): the caller
// decides. Otherwise the first of the step's items that failed tells: the step was
// written before with this content (res.Duplicate, err nil), with other content
// (fnerr KeyReused), the projection is not at the version the step follows or an id
// is taken by another step (fnerr Conflict), or a retryable error (an item that failed
// its condition is gone meanwhile, or could not be read back).
func (s Step) Explain(ctx context.Context, reasons []types.CancellationReason, offset int) (res contract.RecordResult, mine bool, err error) {
	first := -1
	for i := range s.items {
		if j := offset + i; j < len(reasons) && aws.ToString(reasons[j].Code) == "ConditionalCheckFailed" {
			first = i
			break
		}
	}
	if first < 0 {
		return contract.RecordResult{}, false, nil
	}
	res, err = s.explain(ctx, s.items[first])
	return res, true, err
}

func codes(reasons []types.CancellationReason) string {
	var out []string
	for _, r := range reasons {
		out = append(out, aws.ToString(r.Code))
	}
	return strings.Join(out, ",")
}

// items are the writes of a step: its journal entries "<key>/<i>", its projection, its
// integrator event (with the projection: the event exists iff the transition committed)
// and its notifications "<key>/<i>".
func (h Handler) items(in contract.RecordInput, key, digest, tenant string) ([]item, error) {
	var out []item
	stamp := func(av map[string]types.AttributeValue) {
		av[AttrKey], av[AttrDigest] = store.S(key), store.S(digest)
	}
	for i, e := range in.Entries {
		e.CaseID, e.EntryID, e.Seq, e.At = in.CaseID, fmt.Sprintf("%s/%d", key, i+1), in.Seq, e.At.UTC()
		av, err := store.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode journal entry: %w", err)
		}
		stamp(av)
		out = append(out, item{table: h.Journal,
			key: map[string]types.AttributeValue{"case_id": store.S(e.CaseID), "entry_id": store.S(e.EntryID)},
			put: &types.Put{TableName: aws.String(h.Journal), Item: av, ConditionExpression: aws.String("attribute_not_exists(#k)"),
				ExpressionAttributeNames: map[string]string{"#k": "entry_id"}}})
	}
	if in.Case != nil {
		rec := *in.Case
		rec.CaseID, rec.Version, rec.UpdatedAt = in.CaseID, in.Seq, rec.UpdatedAt.UTC()
		av, err := store.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encode case projection: %w", err)
		}
		stamp(av)
		// While the case waits in a human step it carries the task list's keys (internal/
		// tasks); the Put replaces the whole item, so any other step drops them.
		for k, v := range tasks.Attrs(rec, tenant) {
			av[k] = v
		}
		put := &types.Put{TableName: aws.String(h.Cases), Item: av}
		if in.Seq == 1 {
			put.ConditionExpression, put.ExpressionAttributeNames = aws.String("attribute_not_exists(#k)"), map[string]string{"#k": "case_id"}
		} else {
			put.ConditionExpression = aws.String("#v = :v")
			put.ExpressionAttributeNames = map[string]string{"#v": "version"}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: fmt.Sprint(in.Seq - 1)}}
		}
		out = append(out, item{table: h.Cases, key: map[string]types.AttributeValue{"case_id": store.S(in.CaseID)}, put: put})
		// Every workflow's projection names its process; a projection without one (a
		// test's hand-made step) has no event type, so it has no event.
		if h.Events != "" && rec.Process != "" {
			ev, err := h.event(rec, stamp)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	if in.Owner != nil && h.Owners != "" {
		it, err := h.owner(in, stamp)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	for i, n := range in.Notifications {
		n.CaseID, n.NotificationID, n.State, n.At = in.CaseID, fmt.Sprintf("%s/%d", key, i+1), notify.StatePending, n.At.UTC()
		av, err := store.Marshal(n)
		if err != nil {
			return nil, fmt.Errorf("encode notification: %w", err)
		}
		stamp(av)
		out = append(out, item{table: h.Outbox,
			key: map[string]types.AttributeValue{"notification_id": store.S(n.NotificationID)},
			put: &types.Put{TableName: aws.String(h.Outbox), Item: av, ConditionExpression: aws.String("attribute_not_exists(#k)"),
				ExpressionAttributeNames: map[string]string{"#k": "notification_id"}}})
	}
	return out, nil
}

// owner is the case's owner row, written by its first step (RecordInput.Owner). The row
// names a tenant once and for ever: it may be there already with the same tenant (a retry
// of the step, or the API's own write), never with another (Conflict).
func (h Handler) owner(in contract.RecordInput, stamp func(map[string]types.AttributeValue)) (item, error) {
	o := in.Owner
	switch {
	case in.Seq != 1:
		return item{}, fnerr.Invalid("owner", "only a case's first step records its owner")
	case o.Tenant == "" || len(o.Tenant) > maxField || len(o.CreatedBy) > maxField || len(o.KeyID) > maxField:
		return item{}, fnerr.Invalid("owner", fmt.Sprintf("a tenant, a creator and a key id of at most %d bytes", maxField))
	}
	var at int64
	if in.Case != nil {
		at = in.Case.UpdatedAt.Unix()
	}
	av, err := store.Marshal(tasks.Owner{CaseID: in.CaseID, Tenant: o.Tenant, CreatedBy: o.CreatedBy, KeyID: o.KeyID, CreatedAt: at})
	if err != nil {
		return item{}, fmt.Errorf("encode case owner: %w", err)
	}
	stamp(av)
	key := map[string]types.AttributeValue{"case_id": store.S(in.CaseID)}
	return item{table: h.Owners, key: key, put: &types.Put{TableName: aws.String(h.Owners), Item: av,
		ConditionExpression:       aws.String("attribute_not_exists(#k) OR #t = :t"),
		ExpressionAttributeNames:  map[string]string{"#k": "case_id", "#t": "tenant"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": store.S(o.Tenant)}}}, nil
}

// event is the step's integrator event: pending until the relay puts it in its tenant's
// feed. Its time is the step's (the projection's), so the by_state index lists it by
// commit time; it is written once, like a journal entry, and stamped with the step's key
// and digest so that a retry of the step is recognised as the same step.
func (h Handler) event(rec contract.CaseRecord, stamp func(map[string]types.AttributeValue)) (item, error) {
	if strings.Contains(rec.Process, ".") || strings.Contains(rec.Status, ".") {
		// The event type is "<process>.<status>" (internal/events).
		return item{}, fnerr.Invalid("case.process", "neither it nor case.status may contain '.' (the event type)")
	}
	at := rec.UpdatedAt.UTC()
	ev := events.Item{Event: events.Event{ID: events.ID(rec.CaseID, rec.Version), Type: events.Type(rec.Process, rec.Status),
		CaseID: rec.CaseID, Process: rec.Process, Status: rec.Status, StatusLabel: rec.Label, Seq: rec.Version, OccurredAt: at},
		State: events.StatePending, ExpiresAt: at.Add(events.Keep).Unix(), At: events.IndexTime(at)}
	av, err := store.Marshal(ev)
	if err != nil {
		return item{}, fmt.Errorf("encode event: %w", err)
	}
	stamp(av)
	key := map[string]types.AttributeValue{"case_id": av["case_id"], "seq": av["seq"]}
	return item{table: h.Events, key: key,
		put: &types.Put{TableName: aws.String(h.Events), Item: av, ConditionExpression: aws.String("attribute_not_exists(#k)"),
			ExpressionAttributeNames: map[string]string{"#k": "seq"}}}, nil
}

// explain reads back the first item of the step that failed its condition and tells
// why: a duplicate, KeyReused, Conflict, or a retryable error.
func (s Step) explain(ctx context.Context, it item) (contract.RecordResult, error) {
	h, in, key, digest := s.h, s.In, s.Key, s.Digest
	got, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(it.table), Key: it.key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return contract.RecordResult{}, fmt.Errorf("record %s: read back the refused item: %w", key, err)
	}
	if len(got.Item) == 0 {
		if it.table == h.Cases { // a step after the first, and no projection: a step is missing
			return contract.RecordResult{}, fnerr.Conflict("step %s follows version %d of the case projection, which does not exist", key, in.Seq-1)
		}
		// a write-once item that refused the write is gone meanwhile: let the step be tried again
		return contract.RecordResult{}, fmt.Errorf("record %s: a condition failed on an item that is not there", key)
	}
	what := map[string]string{h.Journal: "journal entry", h.Cases: "case projection", h.Outbox: "notification", h.Events: "event", h.Owners: "case owner"}[it.table]
	switch attr(got.Item, AttrKey) {
	case key:
		if attr(got.Item, AttrDigest) == digest {
			return contract.RecordResult{Key: key, Duplicate: true}, nil
		}
		return contract.RecordResult{}, fnerr.KeyReused("step %s was recorded before with other content (%s differs)", key, what)
	default:
		if it.table == h.Cases {
			var rec contract.CaseRecord
			_ = store.Unmarshal(got.Item, &rec)
			if rec.Version == in.Seq-1 { // it reached the version the step follows after Prepare read it
				return contract.RecordResult{}, fmt.Errorf("record %s: the case projection reached version %d meanwhile: try again", key, rec.Version)
			}
			return contract.RecordResult{}, fnerr.Conflict("step %s follows version %d of the case projection, which is at version %d",
				key, in.Seq-1, rec.Version)
		}
		return contract.RecordResult{}, fnerr.Conflict("step %s: the %s id is taken by step %q", key, what, attr(got.Item, AttrKey))
	}
}

func attr(av map[string]types.AttributeValue, name string) string {
	if s, ok := av[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// Digest identifies a step's content. Times are left out: they come from the workflow's
// clock and may differ when a reset runs the same decisions again, which must be
// recognised as the same step; what was decided may not differ.
func Digest(in contract.RecordInput) (string, error) {
	c := contract.RecordInput{CaseID: in.CaseID, Seq: in.Seq}
	for _, e := range in.Entries {
		e.At, e.EntryID, e.CaseID, e.Seq = time.Time{}, "", "", 0
		c.Entries = append(c.Entries, e)
	}
	if in.Case != nil {
		rec := *in.Case
		rec.UpdatedAt, rec.CaseID, rec.Version = time.Time{}, "", 0
		c.Case = &rec
	}
	for _, n := range in.Notifications {
		n.At, n.NotificationID, n.CaseID, n.State = time.Time{}, "", "", ""
		c.Notifications = append(c.Notifications, n)
	}
	b, err := json.Marshal(c) // map keys are sorted: the encoding is canonical
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func validate(in contract.RecordInput) error {
	switch {
	case strings.TrimSpace(in.CaseID) == "" || strings.Contains(in.CaseID, "/"):
		return fnerr.Invalid("case_id", "must not be empty or contain '/'")
	case len(in.CaseID) > maxField:
		return fnerr.Invalid("case_id", fmt.Sprintf("longer than %d bytes", maxField))
	case in.Seq < 1:
		return fnerr.Invalid("seq", "must be 1 or more")
	case len(in.Entries) == 0 && in.Case == nil && len(in.Notifications) == 0:
		return fnerr.Invalid("entries", "a step writes at least one journal entry, projection or notification")
	}
	n := len(in.Entries) + len(in.Notifications)
	if in.Case != nil {
		n++
	}
	if n > maxItems {
		return fnerr.Invalid("entries", fmt.Sprintf("a step writes at most %d items, not %d", maxItems, n))
	}
	for i, e := range in.Entries {
		if err := checkEntry(fmt.Sprintf("entries[%d].", i), e); err != nil {
			return err
		}
	}
	if r := in.Case; r != nil {
		switch {
		case r.Status == "":
			return fnerr.Invalid("case.status", "must not be empty")
		case r.Version != 0 && r.Version != in.Seq:
			return fnerr.Invalid("case.version", "must be the step's seq")
		case r.UpdatedAt.IsZero():
			return fnerr.Invalid("case.updated_at", "must be set")
		}
	}
	for i, n := range in.Notifications {
		n.CaseID, n.NotificationID = in.CaseID, "derived"
		if err := notify.Check(n); err != nil {
			var fe *fnerr.Error
			if errors.As(err, &fe) {
				return &fnerr.Error{Type: fe.Type, Message: fmt.Sprintf("notifications[%d].%s", i, fe.Message)}
			}
			return err
		}
	}
	return nil
}

func checkEntry(field string, e contract.AuditEntry) error {
	if strings.TrimSpace(e.Actor) == "" {
		return fnerr.Invalid(field+"actor", "must not be empty")
	}
	if strings.TrimSpace(e.Action) == "" {
		return fnerr.Invalid(field+"action", "must not be empty")
	}
	if e.At.IsZero() {
		return fnerr.Invalid(field+"at", "must be set (the time of the change, from the workflow clock)")
	}
	for _, f := range []struct{ name, v string }{{"actor", e.Actor}, {"action", e.Action}, {"from", e.From}, {"to", e.To},
		{"reason", e.Reason}, {"request_id", e.RequestID}} {
		if len(f.v) > maxField {
			return fnerr.Invalid(field+f.name, fmt.Sprintf("longer than %d bytes", maxField))
		}
	}
	return nil
}
