package demo

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// declaration walks a 3-НДФЛ through clarification to a decision: the integrator submits
// it (confirmed by SMS code) with a wrong declared tax, the automatic check names the
// field, the correction passes, the inspector finds it in the task list and asks for
// documents, the taxpayer answers with a PDF, the inspector decides, and the decision's
// PDF is downloaded.
func (m *demo) declaration() outcome {
	w := m.begin("declaration", workflows.DeclarationDecided)
	w.step("find a declaration that needs clarification")
	subj, err := m.d.Find(seed.DeclarationClarification)
	if err != nil {
		return w.fail(err)
	}
	c := subj.Declaration
	w.step("submit the declaration")
	var created struct {
		CaseID string `json:"case_id"`
		Status string `json:"status"`
		Label  string `json:"label"`
	}
	if err := m.expect(http.StatusCreated, &created, "POST", "/v1/declarations", m.keys.Integrator, drive.JSON(c.Declaration),
		"Idempotency-Key", newIdempotencyKey(), "Content-Type", "application/json",
		"X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-"+newIdempotencyKey()[:8]); err != nil {
		return w.fail(err)
	}
	w.o.caseID = created.CaseID
	w.show(created.Status, created.Label, fmt.Sprintf("3-НДФЛ for %d (JSON), confirmed by SMS code", c.Declaration.Period))

	read := func() (workflows.DeclarationStatus, error) {
		var st workflows.DeclarationStatus
		err := m.expect(http.StatusOK, &st, "GET", "/v1/declarations/"+w.o.caseID, m.keys.Integrator, nil)
		return st, err
	}
	is := func(want string) func(workflows.DeclarationStatus) bool {
		return func(st workflows.DeclarationStatus) bool { return st.Status == want }
	}
	describe := func(st workflows.DeclarationStatus) string { return st.Status + " " + st.Requested }

	w.step("wait for the automatic check")
	st, err := poll(m, "the automatic check to ask for clarification", read, is(workflows.DeclarationClarification), describe)
	if err != nil {
		return w.fail(err)
	}
	var fields []string
	for _, p := range st.Problems {
		fields = append(fields, p.Field+": "+p.Reason)
	}
	w.show(st.Status, st.Label, "automatic check: "+strings.Join(fields, "; "))

	w.step("send the correction")
	if err := m.expect(http.StatusOK, nil, "POST", "/v1/declarations/"+w.o.caseID+"/correction", m.keys.Integrator, drive.JSON(c.Corrected),
		"Content-Type", "application/json"); err != nil {
		return w.fail(err)
	}
	if st, err = poll(m, "the corrected declaration to go to desk review", read, is(workflows.DeclarationInReview), describe); err != nil {
		return w.fail(err)
	}
	detail := "correction accepted"
	if st.Computed != nil {
		detail = fmt.Sprintf("correction accepted: tax %s, refund %s", domain.Kopecks(st.Computed.Tax), domain.Kopecks(st.Computed.Refund))
	}
	w.show(st.Status, st.Label, detail)

	w.step("the inspector finds it in the task list")
	if err := m.waitTask("inspector", m.keys.Inspector, w.o.caseID); err != nil {
		return w.fail(err)
	}
	w.step("the inspector asks for documents")
	if err := m.expect(http.StatusOK, nil, "POST", "/v1/declarations/"+w.o.caseID+"/request-documents", m.keys.Inspector,
		drive.JSON(map[string]string{"what": "документы, подтверждающие вычет"})); err != nil {
		return w.fail(err)
	}
	if st, err = poll(m, "the request for documents", read, is(workflows.DeclarationClarification), describe); err != nil {
		return w.fail(err)
	}
	w.show(st.Status, st.Label, "the inspector asked for: "+st.Requested)

	w.step("the taxpayer answers with a PDF")
	var answer struct {
		Answers bool `json:"answers_request"`
	}
	if err := m.expect(http.StatusAccepted, &answer, "POST", "/v1/declarations/"+w.o.caseID+"/documents", m.keys.Integrator,
		drive.PDF("Receipts confirming the deduction"), "Content-Type", "application/pdf"); err != nil {
		return w.fail(err)
	}
	if !answer.Answers {
		return w.fail(fmt.Errorf("the upload did not answer the inspector's request"))
	}
	if st, err = poll(m, "the review to go on", read, is(workflows.DeclarationInReview), describe); err != nil {
		return w.fail(err)
	}
	w.show(st.Status, st.Label, "documents received (PDF, stored in S3); the review goes on")

	w.step("the inspector decides")
	if err := m.expect(http.StatusOK, nil, "POST", "/v1/declarations/"+w.o.caseID+"/decision", m.keys.Inspector,
		drive.JSON(map[string]string{"decision": "confirmed", "grounds": "документы подтверждают заявленный вычет"})); err != nil {
		return w.fail(err)
	}
	if st, err = poll(m, "the decision", read, is(workflows.DeclarationDecided), describe); err != nil {
		return w.fail(err)
	}
	w.step("download the decision's PDF")
	var doc struct {
		URL string `json:"url"`
	}
	if err := m.expect(http.StatusOK, &doc, "GET", "/v1/declarations/"+w.o.caseID+"/decision-document", m.keys.Integrator, nil); err != nil {
		return w.fail(err)
	}
	pdf, err := m.download(doc.URL)
	if err != nil {
		return w.fail(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 200 {
		return w.fail(fmt.Errorf("the decision document is not a PDF (%d bytes, starts %q)", len(pdf), pdf[:min(len(pdf), 8)]))
	}
	detail = fmt.Sprintf("decision %s by %s; decision PDF %d bytes (presigned S3 URL)", st.Decision, st.DecidedBy, len(pdf))
	if st.RefundCase != "" {
		detail += "; refund case " + st.RefundCase + " started for the confirmed refund"
	}
	w.show(st.Status, st.Label, detail)
	return w.o
}

// download fetches a presigned URL.
func (m *demo) download(url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(m.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download the decision document: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // a reader: everything needed was read
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("download the decision document: S3 answered %s", resp.Status)
	}
	return b, err
}
