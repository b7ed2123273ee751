//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/pdfdoc"
	"github.com/taxflow/taxflow/internal/pdfdoc/pdfdoctest"
	"github.com/taxflow/taxflow/workflows"
)

func declarationXML(inn string, declaredTax int64) []byte {
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<declaration><inn>%s</inn><period>2025</period>
<incomes><income><source>ООО Ромашка</source><kind>salary</kind><amount_kopecks>120000000</amount_kopecks></income></incomes>
<withheld_kopecks>15600000</withheld_kopecks>
<deductions><deduction><kind>social</kind><amount_kopecks>10000000</amount_kopecks><documents><document>receipt-1</document></documents></deduction></deductions>
<declared_tax_kopecks>%d</declared_tax_kopecks><declared_refund_kopecks>1300000</declared_refund_kopecks></declaration>`, inn, declaredTax))
}

func (c *apiClient) declaration(id string) workflows.DeclarationStatus {
	c.t.Helper()
	code, out := c.do("GET", "/v1/declarations/"+id, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", id, code, out)
	}
	var st workflows.DeclarationStatus
	_ = json.Unmarshal(out, &st)
	return st
}

func (c *apiClient) waitDeclaration(id, want string) workflows.DeclarationStatus {
	c.t.Helper()
	return poll(c.t, id+" to be "+want, func() workflows.DeclarationStatus { return c.declaration(id) },
		func(st workflows.DeclarationStatus) bool { return st.Status == want })
}

// From submission (XML, SMS confirmation) through a failed check, a correction, an
// inspector's request and the taxpayer's answer to a decision whose PDF is downloaded
// through its presigned URL and read back.
func TestDeclarationSubmissionToDecisionOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	ck, _ := keys.Create(context.Background(), api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator, Scopes: []string{api.ScopeDeclarationsRead, api.ScopeDeclarationsWrite}})
	ik, _ := keys.Create(context.Background(), api.Principal{ID: "e2e-inspector", Tenant: "tax-office", Role: api.RoleInspector, Scopes: []string{api.ScopeDeclarationsRead, api.ScopeDeclarationsReview, api.ScopeTasksRead}})
	cabinet, inspector := &apiClient{t, base + "|" + ck}, &apiClient{t, base + "|" + ik}
	inn := domain.CompleteINN12(fmt.Sprintf("66%08d", rand.IntN(100_000_000)))

	code, out := cabinet.do("POST", "/v1/declarations", declarationXML(inn, 14_000_000), "Idempotency-Key", uuid.NewString(),
		"Content-Type", "application/xml", "X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-check-1")
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, out)
	}
	var created struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal(out, &created)
	id := created.CaseID
	st := cabinet.waitDeclaration(id, workflows.DeclarationClarification)
	if len(st.Problems) != 1 || st.Problems[0].Field != "declared_tax_kopecks" || st.Confirmation != "sms" {
		t.Fatalf("problems %v", st.Problems)
	}
	if code, out := cabinet.do("POST", "/v1/declarations/"+id+"/correction", declarationXML(inn, 14_300_000), "Content-Type", "application/xml"); code != http.StatusOK {
		t.Fatalf("correction: %d %s", code, out)
	}
	st = cabinet.waitDeclaration(id, workflows.DeclarationInReview)
	// The refund claimed waits for the inspector's decision (Tax Code art. 78, 88).
	if st.RefundCase != "" || st.Versions != 2 {
		t.Fatalf("in review: refund %q, versions %d", st.RefundCase, st.Versions)
	}
	// A corrected declaration during the desk review ends it and starts a new one on the
	// same case, with a new term from the correction (art. 88 p.9.1, art. 81; the
	// workflow tests show the term moving).
	code, out = cabinet.do("POST", "/v1/declarations/"+id+"/correction", declarationXML(inn, 14_300_000), "Content-Type", "application/xml")
	var corrected workflows.DeclarationStatus
	if code != http.StatusOK || json.Unmarshal(out, &corrected) != nil || corrected.CaseID != id || corrected.Versions != 3 ||
		corrected.Status != workflows.DeclarationAutoCheck || corrected.DeadlineDay == "" || corrected.Deadline.Before(st.Deadline) {
		t.Fatalf("correction during the review: %d %s", code, out)
	}
	cabinet.waitDeclaration(id, workflows.DeclarationInReview)

	// The inspector finds it in the task list.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, out := inspector.do("GET", "/v1/tasks?role=inspector", nil)
		var list struct {
			Tasks []api.Task `json:"tasks"`
		}
		_ = json.Unmarshal(out, &list)
		if slices.ContainsFunc(list.Tasks, func(tk api.Task) bool { return tk.CaseID == id && tk.Process == "declaration" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the declaration never appeared in the inspector's task list: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, out = inspector.do("POST", "/v1/declarations/"+id+"/request-documents", []byte(`{"what":"чеки об оплате обучения","kind":"documents"}`))
	var requested workflows.DeclarationStatus
	if code != http.StatusOK || json.Unmarshal(out, &requested) != nil || requested.AnswerBy == nil || requested.RequestKind != "documents" {
		t.Fatalf("request: %d %s", code, out)
	}
	code, out = cabinet.do("POST", "/v1/declarations/"+id+"/documents", []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n"))
	if code != http.StatusAccepted || !strings.Contains(string(out), `"answers_request":true`) {
		t.Fatalf("answer: %d %s", code, out)
	}
	cabinet.waitDeclaration(id, workflows.DeclarationInReview)
	code, out = inspector.do("POST", "/v1/declarations/"+id+"/decision", []byte(`{"decision":"confirmed","grounds":"чеки подтверждают социальный вычет"}`))
	if code != http.StatusOK {
		t.Fatalf("decision: %d %s", code, out)
	}
	cabinet.waitDeclaration(id, workflows.DeclarationDecided)
	// The refund starts after the decision, for the refund it confirmed.
	st = poll(t, id+" to start its refund", func() workflows.DeclarationStatus { return cabinet.declaration(id) },
		func(st workflows.DeclarationStatus) bool { return st.RefundCase != "" })
	want := "received>auto_check>clarification_required>auto_check>accepted>in_review>auto_check>accepted>in_review>clarification_required>in_review>decided"
	var got []string
	for _, tr := range st.History {
		got = append(got, tr.To)
	}
	if strings.Join(got, ">") != want || st.Computed.Tax != 14_300_000 || st.Computed.Refund != 1_300_000 || st.ConfirmedRefund != 1_300_000 {
		t.Fatalf("history %v computed %+v", got, st.Computed)
	}
	// The accepted declaration claimed a refund: a refund case was started for it.
	if st.RefundCase == "" {
		t.Fatal("no refund started for the declared refund")
	}
	if _, err := shared.temporal.DescribeWorkflowExecution(context.Background(), st.RefundCase, ""); err != nil {
		t.Fatalf("refund case %s: %v", st.RefundCase, err)
	}

	code, out = cabinet.do("GET", "/v1/declarations/"+id+"/decision-document", nil)
	var doc struct {
		URL string `json:"url"`
	}
	if code != http.StatusOK || json.Unmarshal(out, &doc) != nil {
		t.Fatalf("decision document: %d %s", code, out)
	}
	resp, err := http.Get(doc.URL)
	if err != nil {
		t.Fatal(err)
	}
	pdf, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("downloaded decision: %d %s", resp.StatusCode, pdf)
	}
	// Downloaded, never rendered from S3's origin: the link carries the disposition.
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("the decision is served with Content-Disposition %q, want attachment", cd)
	}
	text := pdfdoctest.Text(t, pdf)
	decided := st.History[len(st.History)-1].At
	for _, want := range []string{"Решение по итогам камеральной налоговой проверки", "№ " + id + "/1", "Дата решения " + pdfdoc.Day(decided),
		"Налогоплательщик (ИНН) ********" + inn[8:], "Декларация подтверждена (код решения: confirmed)",
		"Основания чеки подтверждают социальный вычет", "Сумма налога 143 000,00 ₽", "К возврату 13 000,00 ₽"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q not in the downloaded decision:\n%s", want, text)
		}
	}
	if strings.Contains(text, inn) {
		t.Error("the downloaded decision shows the full INN")
	}
	if fonts := pdfdoctest.Fonts(t, pdf); len(fonts) == 0 || !fonts[0].Embedded {
		t.Errorf("the downloaded decision has no embedded font: %+v", fonts)
	}

	// An appeal goes to a different inspector: the one who decided is refused (409).
	if code, out := cabinet.do("POST", "/v1/declarations/"+id+"/appeal", []byte(`{"reason":"the deduction was understated"}`)); code != http.StatusOK {
		t.Fatalf("appeal: %d %s", code, out)
	}
	if code, out := inspector.do("POST", "/v1/declarations/"+id+"/decision", []byte(`{"decision":"confirmed","grounds":"as before"}`)); code != http.StatusConflict {
		t.Fatalf("the deciding inspector decided the appeal: %d %s", code, out)
	}
	ik2, err := keys.Create(context.Background(), api.Principal{ID: "e2e-inspector-2", Tenant: "tax-office", Role: api.RoleInspector})
	if err != nil {
		t.Fatal(err)
	}
	second := &apiClient{t, base + "|" + ik2}
	if code, out := second.do("POST", "/v1/declarations/"+id+"/decision", []byte(`{"decision":"confirmed","grounds":"the appeal is not founded"}`)); code != http.StatusOK {
		t.Fatalf("another inspector decides the appeal: %d %s", code, out)
	}
	// Decided, no appeal running: an attachment is refused with the case's status, not
	// stored and dropped.
	code, out = cabinet.do("POST", "/v1/declarations/"+id+"/documents", []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n"))
	if code != http.StatusConflict || !strings.Contains(string(out), `"current_status":"decided"`) {
		t.Fatalf("an attachment after the decision: %d %s, want 409 with current_status decided", code, out)
	}
}
