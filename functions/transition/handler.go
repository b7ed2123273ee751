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
// A step written by a local activity (RecordInput.Writer set) was written before the
// workflow task that decided it was committed. When that task failed, the next attempt
// decides the step again and may find it written with other content by the attempt that
// never counted. The function then replaces that earlier attempt's step — its journal
// entries, projection and notifications, the ones the new step has no more of deleted —
// in one transaction conditional on every item still carrying the earlier writer. Only
// an earlier attempt of the same workflow (the same first run) may be replaced; anything
// else with other content stays KeyReused. A workflow writes at most one step as a local
// activity per workflow task, so an attempt that never counted wrote at most one step of
// its own, and the projection is at that step.
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

	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Attributes every item of a step carries.
const (
	AttrKey    = "record_key"
	AttrDigest = "record_digest"
	// AttrWriter: the workflow task attempt that wrote a step run as a local activity.
	AttrWriter = "record_writer"
	// The projection lists the items of the step that wrote it — how many journal entries,
	// which notifications — so that a step written over can delete what the new one does
	// not have.
	attrEntries       = "record_entries"
	attrNotifications = "record_notification_ids"
)

// Handler writes steps. The tables are the deployed names of audit.Table, cases.Table
// and notify.Table.
type Handler struct {
	DB      store.DB
	Journal string
	Cases   string
	Outbox  string
}

const (
	maxField = 512
	maxItems = 100 // DynamoDB's limit of items in one transaction
)

// item is one write of the transaction and where to read it back.
type item struct {
	table string
	key   map[string]types.AttributeValue
	put   *types.Put
}

// Record writes the step, or recognises it as written before.
func (h Handler) Record(ctx context.Context, in contract.RecordInput) (contract.RecordResult, error) {
	if err := validate(in); err != nil {
		return contract.RecordResult{}, err
	}
	key := contract.RecordKey(in.CaseID, in.Seq)
	digest, err := Digest(in)
	if err != nil {
		return contract.RecordResult{}, err
	}
	items, err := h.items(in, key, digest, nil, nil)
	if err != nil {
		return contract.RecordResult{}, err
	}
	tx := make([]types.TransactWriteItem, len(items))
	for i, it := range items {
		tx[i] = types.TransactWriteItem{Put: it.put}
	}
	_, err = h.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
	if err == nil {
		return contract.RecordResult{Key: key}, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return contract.RecordResult{}, fmt.Errorf("record %s: %w", key, err)
	}
	return h.explain(ctx, in, key, digest, items, tce)
}

// items are the writes of a step; noteIDs, where given, are its notifications' ids (a
// replacement does not reuse an earlier attempt's), else "<key>/<i>"; listed, where
// given, the notification ids the projection lists (else noteIDs).
func (h Handler) items(in contract.RecordInput, key, digest string, noteIDs, listed []string) ([]item, error) {
	if noteIDs == nil {
		for i := range in.Notifications {
			noteIDs = append(noteIDs, fmt.Sprintf("%s/%d", key, i+1))
		}
	}
	if listed == nil {
		listed = noteIDs
	}
	var out []item
	stamp := func(av map[string]types.AttributeValue) {
		av[AttrKey], av[AttrDigest] = store.S(key), store.S(digest)
		if in.Writer != nil {
			av[AttrWriter] = store.S(in.Writer.String())
		}
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
		av[attrEntries] = &types.AttributeValueMemberN{Value: fmt.Sprint(len(in.Entries))}
		ids := &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
		for _, id := range listed {
			ids.Value = append(ids.Value, store.S(id))
		}
		av[attrNotifications] = ids
		put := &types.Put{TableName: aws.String(h.Cases), Item: av}
		if in.Seq == 1 {
			put.ConditionExpression, put.ExpressionAttributeNames = aws.String("attribute_not_exists(#k)"), map[string]string{"#k": "case_id"}
		} else {
			put.ConditionExpression = aws.String("#v = :v")
			put.ExpressionAttributeNames = map[string]string{"#v": "version"}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: fmt.Sprint(in.Seq - 1)}}
		}
		out = append(out, item{table: h.Cases, key: map[string]types.AttributeValue{"case_id": store.S(in.CaseID)}, put: put})
	}
	for i, n := range in.Notifications {
		n.CaseID, n.NotificationID, n.State, n.At = in.CaseID, noteIDs[i], notify.StatePending, n.At.UTC()
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

// explain turns a cancelled transaction into the answer: a duplicate, KeyReused,
// Conflict, or a retryable error (a concurrent transaction on the same items).
func (h Handler) explain(ctx context.Context, in contract.RecordInput, key, digest string, items []item, tce *types.TransactionCanceledException) (contract.RecordResult, error) {
	first := -1
	var codes []string
	for i, r := range tce.CancellationReasons {
		code := aws.ToString(r.Code)
		codes = append(codes, code)
		if code == "ConditionalCheckFailed" && first < 0 && i < len(items) {
			first = i
		}
	}
	if first < 0 { // no condition failed: a conflict with a concurrent transaction, throttling
		return contract.RecordResult{}, fmt.Errorf("record %s: transaction cancelled (%s)", key, strings.Join(codes, ","))
	}
	it := items[first]
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
	what := map[string]string{h.Journal: "journal entry", h.Cases: "case projection", h.Outbox: "notification"}[it.table]
	switch attr(got.Item, AttrKey) {
	case key:
		if attr(got.Item, AttrDigest) == digest {
			return contract.RecordResult{Key: key, Duplicate: true}, nil
		}
		if earlier, ok := supersedes(in, attr(got.Item, AttrWriter)); ok {
			return h.overwrite(ctx, in, key, digest, earlier)
		}
		return contract.RecordResult{}, fnerr.KeyReused("step %s was recorded before with other content (%s differs)", key, what)
	default:
		if it.table == h.Cases {
			var rec contract.CaseRecord
			_ = store.Unmarshal(got.Item, &rec)
			return contract.RecordResult{}, fnerr.Conflict("step %s follows version %d of the case projection, which is at version %d",
				key, in.Seq-1, rec.Version)
		}
		return contract.RecordResult{}, fnerr.Conflict("step %s: the %s id is taken by step %q", key, what, attr(got.Item, AttrKey))
	}
}

// supersedes tells whether the step in is a later attempt's decision of a step that an
// earlier attempt wrote that never counted: both written by local activities, the stored
// one by the same run (or by the run this one continues, whose last task may have
// written a step it then did not keep), started earlier on the workflow clock. A reset
// run is another run that continues none: it never replaces what the run it was reset
// from wrote, which did count.
func supersedes(in contract.RecordInput, stored string) (string, bool) {
	if in.Writer == nil || in.Case == nil {
		return "", false
	}
	old, ok := contract.ParseRecordWriter(stored)
	if !ok || !old.At.Before(in.Writer.At) {
		return "", false
	}
	if old.Chain != in.Writer.Chain && (in.Writer.Previous == "" || old.Chain != in.Writer.Previous) {
		return "", false
	}
	return stored, true
}

// overwrite replaces the step an earlier attempt wrote (writer earlier) by this one, in
// one transaction: this step's entries are written where there are none or where the
// earlier attempt's are, the earlier attempt's entries this step has no more of are
// deleted, and the projection is replaced only while it is that attempt's step. The
// earlier attempt's notifications still pending are deleted (conditional on still being
// pending and unclaimed: the relay claims one before it hands it over, and then the next
// try sees it so). One the relay claimed or handed over is never written over or deleted:
// the channel de-duplicates by id, so a new notification under that id would never
// arrive. It stays, as it is, and stands for this step's notification if that says the same; otherwise this
// step's notification is delivered under an id of its own.
func (h Handler) overwrite(ctx context.Context, in contract.RecordInput, key, digest, earlier string) (contract.RecordResult, error) {
	cur, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Cases), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"case_id": store.S(in.CaseID)}})
	if err != nil {
		return contract.RecordResult{}, fmt.Errorf("record %s: read the projection of the earlier attempt: %w", key, err)
	}
	if attr(cur.Item, AttrKey) != key || attr(cur.Item, AttrWriter) != earlier {
		return contract.RecordResult{}, fnerr.KeyReused("step %s was recorded before with other content by an earlier attempt, "+
			"and the case projection is no longer at that step (it is at %q)", key, attr(cur.Item, AttrKey))
	}
	oldEntries := count(cur.Item, attrEntries)
	earlierNotes, err := h.notesOf(ctx, key, cur.Item)
	if err != nil {
		return contract.RecordResult{}, err
	}
	// This step's notifications get ids of their own (never an earlier attempt's: one of
	// those may have been handed over, and the channel would take the new one for it),
	// except one that says what a notification already handed over said: that one stands.
	// Handed-over ones stay listed, so that a later replacement still finds them.
	var noteIDs, listed []string
	kept := map[string]bool{}
	for i, n := range in.Notifications {
		id := fmt.Sprintf("%s/%d/%d", key, i+1, in.Writer.At.UnixNano())
		for _, e := range earlierNotes {
			if e.handed && !kept[e.id] && sameNotification(e.n, n) {
				id, kept[e.id] = e.id, true
				break
			}
		}
		noteIDs = append(noteIDs, id)
	}
	listed = append(listed, noteIDs...)
	for _, e := range earlierNotes {
		if e.handed && !kept[e.id] {
			listed = append(listed, e.id)
		}
	}
	items, err := h.items(in, key, digest, noteIDs, listed)
	if err != nil {
		return contract.RecordResult{}, err
	}
	byEarlier := func(pending bool) (*string, map[string]string, map[string]types.AttributeValue) {
		if pending { // and not claimed by the relay meanwhile
			return aws.String("#v = :v AND #s = :s AND attribute_not_exists(#h)"), map[string]string{"#v": AttrWriter, "#s": "state", "#h": delivery.AttrHandedAt},
				map[string]types.AttributeValue{":v": store.S(earlier), ":s": store.S(notify.StatePending)}
		}
		return aws.String("#v = :v"), map[string]string{"#v": AttrWriter}, map[string]types.AttributeValue{":v": store.S(earlier)}
	}
	var tx []types.TransactWriteItem
	entries := 0
	for _, it := range items {
		p := it.put
		switch it.table {
		case h.Journal:
			entries++
			if entries <= oldEntries {
				p.ConditionExpression, p.ExpressionAttributeNames, p.ExpressionAttributeValues = byEarlier(false)
			}
		case h.Outbox:
			if kept[attr(p.Item, "notification_id")] {
				continue // the one handed over stands
			}
		case h.Cases:
			p.ConditionExpression, p.ExpressionAttributeNames, p.ExpressionAttributeValues = byEarlier(false)
		}
		tx = append(tx, types.TransactWriteItem{Put: p})
	}
	del := func(table string, k map[string]types.AttributeValue, pending bool) {
		cond, names, values := byEarlier(pending)
		tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(table), Key: k,
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
	}
	for i := entries + 1; i <= oldEntries; i++ {
		del(h.Journal, map[string]types.AttributeValue{"case_id": store.S(in.CaseID), "entry_id": store.S(fmt.Sprintf("%s/%d", key, i))}, false)
	}
	for _, e := range earlierNotes {
		if !e.handed {
			del(h.Outbox, map[string]types.AttributeValue{"notification_id": store.S(e.id)}, true)
		}
	}
	if len(tx) > maxItems {
		return contract.RecordResult{}, fnerr.KeyReused("step %s was recorded before with other content by an earlier attempt, "+
			"and replacing it takes %d items, more than one transaction holds", key, len(tx))
	}
	if _, err := h.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx}); err != nil {
		// Another attempt moved first, or the relay handed a notification over meanwhile:
		// the next try of this step sees what changed.
		return contract.RecordResult{}, fmt.Errorf("record %s: replace the earlier attempt's step: %w", key, err)
	}
	return contract.RecordResult{Key: key, Replaced: true}, nil
}

// earlierNote is a notification of the step being replaced, as the outbox holds it.
type earlierNote struct {
	id     string
	n      contract.Notification
	handed bool // claimed by the relay or sent
}

// notesOf reads the notifications a step's projection lists (one gone meanwhile is left out).
func (h Handler) notesOf(ctx context.Context, key string, projection map[string]types.AttributeValue) ([]earlierNote, error) {
	l, _ := projection[attrNotifications].(*types.AttributeValueMemberL)
	if l == nil {
		return nil, nil
	}
	var out []earlierNote
	for _, v := range l.Value {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			continue
		}
		got, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Outbox), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"notification_id": store.S(s.Value)}})
		if err != nil {
			return nil, fmt.Errorf("record %s: read the earlier attempt's notification: %w", key, err)
		}
		if len(got.Item) == 0 {
			continue
		}
		e := earlierNote{id: s.Value}
		if err := store.Unmarshal(got.Item, &e.n); err != nil {
			return nil, fmt.Errorf("record %s: decode the earlier attempt's notification: %w", key, err)
		}
		_, claimed := got.Item[delivery.AttrHandedAt]
		e.handed = claimed || e.n.State != notify.StatePending
		out = append(out, e)
	}
	return out, nil
}

// sameNotification tells whether two notifications say the same to the same recipient
// (times, ids and delivery state aside).
func sameNotification(a, b contract.Notification) bool {
	norm := func(n contract.Notification) string {
		n.At, n.NotificationID, n.CaseID, n.State = time.Time{}, "", "", ""
		j, _ := json.Marshal(n)
		return string(j)
	}
	return norm(a) == norm(b)
}

func count(av map[string]types.AttributeValue, name string) int {
	n, ok := av[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	var v int
	_, _ = fmt.Sscan(n.Value, &v)
	return v
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
	case in.Writer != nil && (strings.TrimSpace(in.Writer.Chain) == "" || strings.Contains(in.Writer.Chain, "|") || len(in.Writer.Chain) > maxField):
		return fnerr.Invalid("writer.chain", "must be the workflow's first run id")
	case in.Writer != nil && in.Writer.At.IsZero():
		return fnerr.Invalid("writer.at", "must be the workflow task's start on the workflow clock")
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
