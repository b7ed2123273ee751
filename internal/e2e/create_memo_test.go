//go:build integration

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// A create's memo (its request's hash, its owner, its answer) and its case's search
// attributes and id, as anyone with access to Temporal sees them without the codec
// (`temporal workflow describe`, `temporal workflow list`, the Web UI): nothing of the
// person in clear — no INN, SNILS, passport or name — and the memo encrypted like every
// payload.
func TestCreateMemoHoldsNoPersonalDataInClear(t *testing.T) {
	queue := startWorker(t, inProcessInvoker())
	cabinet, _ := startIdentityAPI(t, queue)
	p := newPerson(t, true)
	code, identityID := cabinet.startIdentity("documents", p, nil)
	if code != http.StatusCreated {
		t.Fatalf("create identity verification: %d", code)
	}
	integrator, _, _ := startAPI(t, queue)
	inn := newTaxpayer(t, 1_000_000)
	code, refundID := integrator.create(inn, 100_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("create refund: %d", code)
	}
	pii := map[string][]string{
		identityID: {p.INN, p.Surname, p.FirstName, p.Patronymic, p.PassportNumber, strings.ReplaceAll(strings.ReplaceAll(p.SNILS, "-", ""), " ", "")},
		refundID:   {inn},
	}
	for id, values := range pii {
		if !strings.HasPrefix(id, "refund-") && !strings.HasPrefix(id, "identity-") {
			t.Fatalf("case id %q", id)
		}
		describe := temporalCLI(t, "workflow", "describe", "--workflow-id", id, "--output", "json")
		list := temporalCLI(t, "workflow", "list", "--query", "WorkflowId = '"+id+"'", "--output", "json")
		for _, v := range values {
			if strings.Contains(describe, v) || strings.Contains(list, v) || strings.Contains(id, v) {
				t.Errorf("%s: %q in clear (describe %v, list %v)", id, v, strings.Contains(describe, v), strings.Contains(list, v))
			}
		}
		// The memo itself is encrypted: its create field is not JSON anyone can read.
		var d struct {
			WorkflowExecutionInfo struct {
				Memo struct {
					Fields map[string]struct {
						Metadata map[string]string `json:"metadata"`
					} `json:"fields"`
				} `json:"memo"`
			} `json:"workflowExecutionInfo"`
		}
		if err := json.Unmarshal([]byte(describe), &d); err != nil {
			t.Fatalf("describe %s: %v\n%s", id, err, describe)
		}
		f, ok := d.WorkflowExecutionInfo.Memo.Fields["create"]
		if !ok {
			t.Fatalf("describe %s: no create memo:\n%s", id, describe)
		}
		if enc := f.Metadata["encoding"]; enc != "YmluYXJ5L2VuY3J5cHRlZA==" { // base64 of binary/encrypted
			t.Errorf("%s: the create memo's encoding is %q, want binary/encrypted:\n%s", id, enc, describe)
		}
		if strings.Contains(describe, "request_sha256") || strings.Contains(describe, "e2e-cabinet") {
			t.Errorf("%s: the create memo is readable without the codec:\n%s", id, describe)
		}
	}
}
