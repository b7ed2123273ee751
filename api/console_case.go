package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

// caseView is what the console shows of a case: never an identifier unmasked.
type caseView struct {
	ID, Process, Status, Label string
	Due                        *time.Time
	SLA                        string
	Overdue, Escalated         bool
	INN                        string // masked
	Refund                     *workflows.RefundStatus
	Reserved                   int64
	Identity                   *workflows.IdentityStatus
	Declaration                *workflows.DeclarationStatus
	Account                    *workflows.AccountStatus
	Documents                  []docLink
	Journal                    []contract.AuditEntry
}

type docLink struct {
	Name, Type, Note, URL string
	Accepted              bool
}

// slaUnit: how a process's human step counts its term (domain.md): the refund's 30 days
// and the declaration's months are calendar days, the identity review 1 working day, the
// specialist's unblock 24 hours.
var slaUnit = map[string]string{procRefund: "days", procDecl: "days", procIdent: "working_days", procAccount: "hours"}

// loadCase asks the case for its status (the "status" query of every process).
func (s *Server) loadCase(ctx context.Context, id, process string) (caseView, error) {
	ctx, cancel := context.WithTimeout(ctx, consoleQueryWait)
	defer cancel()
	v := caseView{ID: id, Process: process}
	var val converter.EncodedValue
	var err error
	if process != procRefund { // a refund is read as the API reads it: the record corrects a run behind it
		if val, err = s.Temporal.QueryWorkflow(ctx, id, "", "status"); err != nil {
			return v, err
		}
	}
	switch process {
	case procRefund:
		st, err := s.readRefund(ctx, id)
		if err != nil {
			return v, err
		}
		v.Refund, v.Status, v.Escalated = &st, st.Status, st.Escalated
		if !st.Deadline.IsZero() {
			v.Due = &st.Deadline
		}
		if st.Reservation == "reserved" {
			v.Reserved = st.Approved
		}
	case procIdent:
		var st workflows.IdentityStatus
		err = val.Get(&st)
		v.Identity, v.Status, v.Escalated, v.Due = &st, st.Status, st.Escalated, st.ReviewDue
	case procDecl:
		var st workflows.DeclarationStatus
		err = val.Get(&st)
		v.Declaration, v.Status, v.Escalated = &st, st.Status, st.Escalated
		if !st.Deadline.IsZero() {
			v.Due = &st.Deadline
		}
	case procAccount:
		var st workflows.AccountStatus
		err = val.Get(&st)
		v.Account, v.Status, v.Escalated, v.Due = &st, st.Status, st.Escalated, st.SpecialistDue
	}
	if err != nil {
		return v, fmt.Errorf("decode %s status: %w", process, err)
	}
	v.Label = statusLabel(process, v.Status)
	if v.Due != nil {
		v.SLA, v.Overdue = countdown(time.Now(), *v.Due, slaUnit[process], calendar.Shared())
	}
	return v, nil
}

// countdown says how much of a term is left, in the unit its rule counts: calendar days,
// working days on the production calendar, or hours. Past the term it says by how much.
func countdown(now, due time.Time, unit string, cal *calendar.Calendar) (string, bool) {
	if !now.Before(due) {
		late := now.Sub(due)
		if unit == "hours" || late < 24*time.Hour {
			return fmt.Sprintf("просрочено на %d ч", int(math.Ceil(late.Hours()))), true
		}
		return fmt.Sprintf("просрочено на %d дн.", int(late.Hours()/24)), true
	}
	left := due.Sub(now)
	switch unit {
	case "hours":
		return fmt.Sprintf("осталось %d ч", int(math.Ceil(left.Hours()))), false
	case "working_days":
		today := now.In(calendar.Moscow)
		last := due.In(calendar.Moscow)
		n := 0
		for d := time.Date(today.Year(), today.Month(), today.Day()+1, 12, 0, 0, 0, calendar.Moscow); !d.After(last); d = d.AddDate(0, 0, 1) {
			if cal.IsWorkingDay(d) {
				n++
			}
		}
		if n == 0 {
			return fmt.Sprintf("осталось %d ч (сегодня)", int(math.Ceil(left.Hours()))), false
		}
		return fmt.Sprintf("осталось %d раб. дн.", n), false
	}
	today := now.In(calendar.Moscow)
	last := due.Add(-time.Nanosecond).In(calendar.Moscow) // a term ends at 24:00 of its last day
	days := int(time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, time.UTC).Sub(
		time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)).Hours() / 24)
	if days <= 0 {
		return "последний день", false
	}
	return fmt.Sprintf("осталось %d дн.", days), false
}

// caseINN reads the taxpayer's INN from the input the case started with (decrypted by
// the data converter), for the masked display; "" when it cannot.
func (s *Server) caseINN(ctx context.Context, id string) string {
	inn, err := s.startINN(ctx, id)
	if err != nil {
		return ""
	}
	return inn
}

// startINN reads the taxpayer's INN from the input the case started with (decrypted by
// the data converter). A case that does not exist is errNoObject; one whose input cannot
// be read or names no INN is an error.
func (s *Server) startINN(ctx context.Context, id string) (string, error) {
	if s.DataConverter == nil || s.Temporal == nil {
		return "", errors.New("no data converter: a case's input cannot be read")
	}
	it := s.Temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return "", errNoObject
	}
	ev, err := it.Next()
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return "", errNoObject
	case err != nil:
		return "", fmt.Errorf("read the case's history: %w", err)
	}
	in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput()
	if in == nil || len(in.Payloads) == 0 {
		return "", errors.New("the case's first event carries no input")
	}
	var v struct {
		INN string `json:"inn"`
	}
	if err := s.DataConverter.FromPayload(in.Payloads[0], &v); err != nil {
		return "", fmt.Errorf("decode the case's input: %w", err)
	}
	if v.INN == "" {
		return "", errors.New("the case's input names no taxpayer")
	}
	return v.INN, nil
}

// documentLinks presigns a short-lived GET for each stored document: the browser fetches
// it from S3 directly, nothing is proxied through the API's memory.
func (s *Server) documentLinks(ctx context.Context, v *caseView) {
	var docs []workflows.Document
	switch {
	case v.Refund != nil:
		docs = v.Refund.Documents
	case v.Identity != nil:
		docs = v.Identity.Documents
	}
	link := func(key, name string) string {
		if key == "" || s.S3 == nil {
			return ""
		}
		// Downloaded, never rendered from S3's origin (downloadURL).
		url, err := s.downloadURL(ctx, key, name, 5*time.Minute)
		if err != nil {
			s.Log.Warn().Err(err).Msg("presign a document")
			return ""
		}
		return url
	}
	for _, d := range docs {
		name := d.DocID
		if d.Type != "" {
			name += "." + d.Type
		}
		v.Documents = append(v.Documents, docLink{Name: d.DocID, Type: d.Type, Note: d.Reason, Accepted: d.Accepted, URL: link(d.Key, name)})
	}
	if v.Declaration != nil && v.Declaration.DecisionKey != "" {
		v.Documents = append(v.Documents, docLink{Name: "Решение по декларации", Type: "pdf", Accepted: true,
			URL: link(v.Declaration.DecisionKey, "decision-"+v.ID+".pdf")})
	}
}

type caseData struct {
	layoutData
	Case  caseView
	Forms map[string]bool
	Err   formError
	Form  caseAction
	Done  string
}

// forms lists the decision forms of the case's current step that the role may use.
func forms(v caseView, p Principal) map[string]bool {
	f := map[string]bool{}
	switch {
	case v.Process == procRefund && v.Status == workflows.RefundInReview && p.Can(ScopeRefundsDecide):
		f["refund"] = true
	case v.Process == procRefund && v.Status == workflows.RefundPayoutFailed && p.Can(ScopeOperate):
		f["retry"] = true
	case v.Process == procIdent && v.Status == workflows.IdentityManualReview && p.Can(ScopeIdentityReview):
		f["identity"] = true
	case v.Process == procDecl && v.Status == workflows.DeclarationInReview && p.Can(ScopeDeclarationsReview):
		f["declaration"] = true
	case v.Process == procAccount && v.Status == workflows.AccountAwaitingSpecialist && p.Can(ScopeAccountSpecialist):
		f["account"] = true
	}
	return f
}

// renderCase shows the case page, with the error of a refused form next to its field.
func (s *Server) renderCase(w http.ResponseWriter, r *http.Request, id, process string, fe formError, form caseAction) {
	sess := consoleSession(r)
	v, err := s.loadCase(r.Context(), id, process)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			s.consoleMessage(w, r, http.StatusNotFound, "Дело не найдено", "Такого дела нет.")
			return
		}
		s.Log.Error().Err(err).Msg("console: read case")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Не удалось прочитать дело; повторите позже.")
		return
	}
	if inn := s.caseINN(r.Context(), id); inn != "" {
		v.INN = MaskINN(inn)
	}
	s.documentLinks(r.Context(), &v)
	if s.DB != nil && s.AuditTable != "" {
		if v.Journal, err = audit.Journal(r.Context(), s.DB, s.AuditTable, id); err != nil {
			s.Log.Warn().Err(err).Msg("console: read journal")
		}
		slices.Reverse(v.Journal) // newest first
	}
	a := sess.Account()
	d := caseData{layoutData: layoutData{Title: processLabels[process], Staff: &a, CSRF: sess.CSRF},
		Case: v, Forms: forms(v, a.Principal()), Err: fe, Form: form}
	if fe.Status == http.StatusOK {
		switch r.URL.Query().Get("done") {
		case ActApprove, ActReject, ActRetry, ActRequest, ActDecide:
			d.Done = "Решение принято."
		}
	}
	status := fe.Status
	if status == 0 {
		status = http.StatusOK
	}
	s.render(w, status, "case", d)
}
