package demo

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// refund walks a refund from claim to payout: the integrator claims a little more than
// the confirmed overpayment (so the claim is capped and a reviewer decides), uploads a
// bank statement into S3, the reviewer finds the case in the task list and approves, the
// payout is made, and the journal shows every transition.
func (m *demo) refund() outcome {
	w := m.begin("refund", workflows.RefundPaid)
	w.step("find a taxpayer with a refundable overpayment")
	subj, refundable, err := m.refundSubject()
	if err != nil {
		return w.fail(err)
	}
	claim := refundable + 50_000 // 500 ₽ more than confirmed: capped, so a reviewer decides
	w.step("claim the refund")
	var created struct {
		CaseID string `json:"case_id"`
		Status string `json:"status"`
		Label  string `json:"label"`
	}
	body := drive.JSON(map[string]any{"inn": subj.Taxpayer.INN, "period": subj.Period, "amount_kopecks": claim,
		"reason": fmt.Sprintf("overpaid income tax for %d", subj.Period)})
	if err := m.expect(http.StatusCreated, &created, "POST", "/v1/refunds", m.keys.Integrator, body,
		"Idempotency-Key", newIdempotencyKey(), "Content-Type", "application/json"); err != nil {
		return w.fail(err)
	}
	w.o.caseID = created.CaseID
	w.show(created.Status, created.Label, fmt.Sprintf("claimed %s for %d (confirmed overpayment %s)", domain.Kopecks(claim), subj.Period, domain.Kopecks(refundable)))

	read := func() (workflows.RefundStatus, error) {
		var st workflows.RefundStatus
		err := m.expect(http.StatusOK, &st, "GET", "/v1/refunds/"+w.o.caseID, m.keys.Integrator, nil)
		return st, err
	}
	is := func(want string) func(workflows.RefundStatus) bool {
		return func(st workflows.RefundStatus) bool { return st.Status == want }
	}
	describe := func(st workflows.RefundStatus) string { return st.Status + " " + st.Reason }

	w.step("wait for the request for documents")
	st, err := poll(m, "the refund to ask for documents", read, is(workflows.RefundAwaitingInfo), describe)
	if err != nil {
		return w.fail(err)
	}
	w.show(st.Status, st.Label, "a supporting document is required")

	w.step("upload the bank statement")
	pdf := drive.PDF("Bank statement: income tax overpaid")
	if err := m.expect(http.StatusAccepted, nil, "POST", "/v1/refunds/"+w.o.caseID+"/documents?doc_id=statement", m.keys.Integrator, pdf,
		"Content-Type", "application/pdf"); err != nil {
		return w.fail(err)
	}
	if st, err = poll(m, "the refund to go to review", read, is(workflows.RefundInReview), describe); err != nil {
		return w.fail(err)
	}
	bucket, key := m.cfg.Name(document.Bucket), document.StoredKey(w.o.caseID, "statement")
	head, err := m.clients.S3.HeadObject(m.ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return w.fail(fmt.Errorf("the statement is not in S3 at s3://%s/%s: %w", bucket, key, err))
	}
	w.show(st.Status, st.Label, fmt.Sprintf("statement (PDF, %d bytes, %s) stored at s3://%s/%s", aws.ToInt64(head.ContentLength), head.ServerSideEncryption, bucket, key))

	w.step("the reviewer finds the case in the task list")
	if err := m.waitTask("reviewer", m.keys.Reviewer, w.o.caseID); err != nil {
		return w.fail(err)
	}
	w.step("the reviewer approves")
	var decided workflows.RefundStatus
	if err := m.expect(http.StatusOK, &decided, "POST", "/v1/refunds/"+w.o.caseID+"/decision", m.keys.Reviewer,
		[]byte(`{"approve":true,"reason":"the bank statement confirms the overpayment"}`)); err != nil {
		return w.fail(err)
	}
	w.show(decided.Status, decided.Label, fmt.Sprintf("approved %s by %s (capped at the confirmed overpayment: %v)", domain.Kopecks(decided.Approved), decided.DecidedBy, decided.Capped))

	w.step("wait for the payout")
	if st, err = poll(m, "the payout", read, is(workflows.RefundPaid), describe); err != nil {
		return w.fail(err)
	}
	if st.Paid != refundable {
		return w.fail(fmt.Errorf("paid %s, want the confirmed overpayment %s", domain.Kopecks(st.Paid), domain.Kopecks(refundable)))
	}
	w.show(st.Status, st.Label, fmt.Sprintf("%s paid, transfer %s, deadline %s", domain.Kopecks(st.Paid), st.TransferID, st.Deadline.In(calendar.Moscow).Format("2006-01-02")))

	w.step("read the journal")
	var journal struct {
		Entries []contract.AuditEntry `json:"entries"`
	}
	if err := m.expect(http.StatusOK, &journal, "GET", "/v1/refunds/"+w.o.caseID+"/journal", m.keys.Integrator, nil); err != nil {
		return w.fail(err)
	}
	var path []string
	for _, e := range journal.Entries {
		if e.Action == "status_changed" {
			path = append(path, e.To)
		}
	}
	if want := "received → awaiting_info → in_review → approved → paid"; strings.Join(path, " → ") != want {
		return w.fail(fmt.Errorf("journal transitions %v, want %s", path, want))
	}
	w.show(st.Status, st.Label, fmt.Sprintf("journal: %d entries, %s", len(journal.Entries), strings.Join(path, " → ")))
	return w.o
}

// refundSubject picks the first seeded taxpayer whose overpayment is still refundable in
// the ledger as it is now: an earlier demo run on the same data may have used one up.
func (m *demo) refundSubject() (seed.Subject, int64, error) {
	all := m.d.FindAll(seed.RefundEligible)
	if len(all) == 0 {
		_, err := m.d.Find(seed.RefundEligible)
		return seed.Subject{}, 0, err
	}
	h := overpayment.Handler{DB: m.clients.DynamoDB, Table: m.cfg.Name(overpayment.Table)}
	for _, s := range all {
		b, err := h.Compute(m.ctx, contract.OverpaymentInput{INN: s.Taxpayer.INN, Period: s.Period})
		if err != nil {
			return s, 0, fmt.Errorf("read the ledger: %w", err)
		}
		// What earlier demo runs on this data reserved or paid is no longer available.
		var bal ledger.Balance
		if _, err := store.Get(m.ctx, m.clients.DynamoDB, m.cfg.Name(ledger.Table),
			map[string]types.AttributeValue{"key": store.S(ledger.BalanceKey(s.Taxpayer.INN, s.Period))}, &bal); err != nil {
			return s, 0, fmt.Errorf("read the refund ledger: %w", err)
		}
		if left := b.Refundable - bal.Reserved - bal.Paid; left >= seed.RefundMin {
			return s, left, nil
		}
	}
	return seed.Subject{}, 0, fmt.Errorf("none of the %d seeded taxpayers with a refundable overpayment ≥ %s for %d has one left in the ledger: earlier demo runs on this data used them up; start from a fresh run directory (remove %s)",
		len(all), domain.Kopecks(seed.RefundMin), m.d.LastPeriod, m.dir)
}
