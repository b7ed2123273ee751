// Package tasks is the staff task list: which status of which process waits for which
// role, the attributes the case projection (internal/cases, written by
// functions/transition) carries while a case waits in such a step, and the reads of the
// two sparse indexes that serve "open human steps of role R (of tenant T) ordered by
// deadline" without asking any workflow.
//
// While a case is in a human step, its projection item carries
//   - task_role        = "<role>#<process>"           (index by_task)
//   - task_tenant_role = "<role>#<process>#<tenant>"  (index by_tenant_task), only for a
//     case owned by a tenant (case_owners); an account belongs to a taxpayer, not a tenant
//   - task_due         = "<deadline, UTC, fixed width>#<case id>", or "~#<case id>" for a
//     case without a term (sorts after every date), the sort key of every index here;
//   - task_esc_role and task_esc_tenant_role, the same partitions as task_role and
//     task_tenant_role, only while the case is escalated (indexes by_escalated_task and
//     by_tenant_escalated_task): "escalated tasks of role R" is a key condition, read a
//     page at a time, not a filter over every task of the role.
//
// Every transition writes the projection whole (a Put), so a step out of the human
// status drops the attributes and the case leaves both indexes.
package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// Step is a human step: a status of a process that waits for a role.
type Step struct{ Process, Status string }

// Roles maps a role to the human steps it works on: one task list for every process.
// The statuses are the workflows' constants (api's TestTaskStepsAreTheWorkflowsStatuses).
var Roles = map[string][]Step{
	"inspector":  {{"declaration", "in_review"}},
	"reviewer":   {{"refund", "in_review"}, {"identity", "manual_review"}},
	"specialist": {{"account", "awaiting_specialist"}},
	"operator":   {{"refund", "payout_failed"}},
}

// Attribute and index names on the cases table.
const (
	AttrRole       = "task_role"
	AttrTenantRole = "task_tenant_role"
	AttrDue        = "task_due"
	Index          = "by_task"
	TenantIndex    = "by_tenant_task"

	AttrEscRole          = "task_esc_role"
	AttrEscTenantRole    = "task_esc_tenant_role"
	EscalatedIndex       = "by_escalated_task"
	TenantEscalatedIndex = "by_tenant_escalated_task"
)

// AttrNames are every task attribute a projection may carry.
var AttrNames = []string{AttrRole, AttrTenantRole, AttrDue, AttrEscRole, AttrEscTenantRole}

// RoleOf is the role a process's status waits for, "" when it is no human step.
func RoleOf(process, status string) string {
	for role, steps := range Roles {
		for _, st := range steps {
			if st.Process == process && st.Status == status {
				return role
			}
		}
	}
	return ""
}

// Owned tells whether a process's cases belong to a tenant (case_owners). An account
// case belongs to its taxpayer: which tenants see it is the taxpayer's relationships,
// which change without any step of the case, so it carries no tenant.
func Owned(process string) bool { return process != "account" }

// Queue is the by_task partition of a role's step of a process.
func Queue(role, process string) string { return role + "#" + process }

// TenantQueue is the by_tenant_task partition of a role's step of a process for a tenant.
func TenantQueue(role, process, tenant string) string { return role + "#" + process + "#" + tenant }

// dueLayout is fixed width, so the strings sort as the times do.
const dueLayout = "2006-01-02T15:04:05.000000000Z"

// noTerm sorts after every date.
const noTerm = "~"

// DueKey is the sort key of a case with this deadline (zero: none).
func DueKey(deadline time.Time, caseID string) string {
	return dueBound(deadline) + "#" + caseID
}

// dueBound is the part of a sort key before the case id: every key of a case due
// before t is less than dueBound(t).
func dueBound(t time.Time) string {
	if t.IsZero() {
		return noTerm
	}
	return t.UTC().Format(dueLayout)
}

// splitDue reads a sort key back: the deadline (nil: none) and the case id.
func splitDue(key string) (*time.Time, string, error) {
	d, id, ok := strings.Cut(key, "#")
	if !ok || id == "" {
		return nil, "", fmt.Errorf("task_due %q: not <deadline>#<case id>", key)
	}
	if d == noTerm {
		return nil, id, nil
	}
	t, err := time.Parse(dueLayout, d)
	if err != nil {
		return nil, "", fmt.Errorf("task_due %q: %w", key, err)
	}
	return &t, id, nil
}

// Attrs are the task attributes of a projection record: none when the case is in no
// human step. tenant is the case's owner ("" : none known, or an account): without one
// the case is listed to staff of every tenant (by_task) only.
func Attrs(rec contract.CaseRecord, tenant string) map[string]types.AttributeValue {
	role := RoleOf(rec.Process, rec.Status)
	if role == "" {
		return nil
	}
	out := map[string]types.AttributeValue{AttrRole: store.S(Queue(role, rec.Process)), AttrDue: store.S(DueKey(rec.Deadline, rec.CaseID))}
	if rec.Escalated {
		out[AttrEscRole] = out[AttrRole]
	}
	if tenant != "" && Owned(rec.Process) {
		out[AttrTenantRole] = store.S(TenantQueue(role, rec.Process, tenant))
		if rec.Escalated {
			out[AttrEscTenantRole] = out[AttrTenantRole]
		}
	}
	return out
}

// NeedsOwner tells whether writing this record needs its tenant looked up.
func NeedsOwner(rec contract.CaseRecord) bool {
	return RoleOf(rec.Process, rec.Status) != "" && Owned(rec.Process)
}

// Owner is a case's owner, as case_owners holds it: written by the case's first step
// (functions/transition, from the owner the create put in the case's input), and by a
// batch line after its start; cases made before that had it written before they started.
type Owner struct {
	CaseID    string `json:"case_id"`
	Tenant    string `json:"tenant"`
	CreatedBy string `json:"created_by"`
	KeyID     string `json:"key_id,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// CaseOwner returns the tenant and principal that created a case. A refund started by a
// declaration (refund-<key>, or refund-<key>-<n> for its decision n) belongs to the
// declaration's owner.
func CaseOwner(ctx context.Context, db store.DB, table, id string) (tenant, createdBy string, found bool, err error) {
	var o Owner
	found, err = store.Get(ctx, db, table, map[string]types.AttributeValue{"case_id": store.S(id)}, &o)
	if err != nil || found {
		return o.Tenant, o.CreatedBy, found, err
	}
	rest, ok := strings.CutPrefix(id, "refund-")
	if !ok {
		return "", "", false, nil
	}
	if tenant, createdBy, found, err = CaseOwner(ctx, db, table, "declaration-"+rest); err != nil || found {
		return tenant, createdBy, found, err
	}
	// refund-<key>-<n>: the refund decision n of declaration-<key> started for what it
	// confirmed beyond the declaration's earlier refunds (workflows
	// declaration-refund-difference).
	if i := strings.LastIndexByte(rest, '-'); i > 0 && decisionNumber(rest[i+1:]) {
		return CaseOwner(ctx, db, table, "declaration-"+rest[:i])
	}
	return "", "", false, nil
}

// decisionNumber: a decision's number as a refund id's suffix carries it (1-9999, no
// leading zero).
func decisionNumber(s string) bool {
	if len(s) == 0 || len(s) > 4 || s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
