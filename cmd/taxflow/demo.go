package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/seed"
	"github.com/taxflow/taxflow/workflows"
)

// demoRefund walks one refund through the HTTP API, as an integrator and a reviewer
// would: request, upload a PDF, decide, and watch it get paid.
func demoRefund(ctx context.Context, a *app, _ client.Client, integratorKey, reviewerKey string) error {
	base := "http://" + a.cfg.APIAddr
	if err := waitHealthy(ctx, base+"/healthz"); err != nil {
		return err
	}
	tp, refundable := demoTaxpayer()
	call := func(method, path, key string, body []byte, headers ...string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	claim := refundable + 50_000 // a little more than confirmed: capped, so a reviewer decides
	body, _ := json.Marshal(map[string]any{"inn": tp.INN, "period": 2025, "amount_kopecks": claim, "reason": "overpaid income tax for 2025"})
	code, out, err := call("POST", "/v1/refunds", integratorKey, body, "Idempotency-Key", uuid.NewString(), "Content-Type", "application/json")
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("demo: create refund: %d %s %v", code, out, err)
	}
	var created struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal(out, &created)
	fmt.Printf("\ndemo: refund %s requested (%s claimed, %s confirmed overpayment)\n", created.CaseID, domain.Kopecks(claim), domain.Kopecks(refundable))
	pdf := []byte("%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
	if code, out, err := call("POST", "/v1/refunds/"+created.CaseID+"/documents?doc_id=statement-2025", integratorKey, pdf); err != nil || code != http.StatusAccepted {
		return fmt.Errorf("demo: upload document: %d %s %v", code, out, err)
	}
	fmt.Println("demo: bank statement (PDF) uploaded into S3")
	var st workflows.RefundStatus
	for deadline := time.Now().Add(time.Minute); ; {
		code, out, err := call("GET", "/v1/refunds/"+created.CaseID, integratorKey, nil)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("demo: read refund: %d %s %v", code, out, err)
		}
		_ = json.Unmarshal(out, &st)
		if st.Status == workflows.RefundInReview || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, out, err = call("POST", "/v1/refunds/"+created.CaseID+"/decision", reviewerKey, []byte(`{"approve":true,"reason":"statement confirms the overpayment"}`))
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("demo: decide: %d %s %v", code, out, err)
	}
	for deadline := time.Now().Add(time.Minute); st.Status != workflows.RefundPaid && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		_, out, _ = call("GET", "/v1/refunds/"+created.CaseID, integratorKey, nil)
		_ = json.Unmarshal(out, &st)
	}
	fmt.Printf("demo: %s «%s», %s paid (transfer %s)\n", st.Status, st.Label, domain.Kopecks(st.Paid), st.TransferID)
	for _, tr := range st.History {
		fmt.Printf("        %s → %s by %s\n", tr.From, tr.To, tr.Actor)
	}
	fmt.Printf("try: curl -H 'Authorization: Bearer %s' %s/v1/refunds/%s/journal\n", integratorKey, base, created.CaseID)
	return nil
}

// demoTaxpayer picks an eligible seeded taxpayer with a refundable overpayment.
func demoTaxpayer() (contract.Taxpayer, int64) {
	d := seed.Generate(500, 2026)
	by := map[string][]contract.LedgerEntry{}
	for _, e := range d.Ledger {
		by[e.INN] = append(by[e.INN], e)
	}
	for _, tp := range d.Taxpayers {
		b := overpayment.Balance(by[tp.INN], 2025)
		if tp.AccountState == "active" && tp.Confirmed && tp.PendingBank == nil && b.Refundable > 2_000_000 {
			return tp, b.Refundable
		}
	}
	return d.Taxpayers[0], 0
}

func waitHealthy(ctx context.Context, url string) error {
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", url)
}
