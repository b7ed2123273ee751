package drive

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/taxflow/taxflow/internal/events"
)

// The receiver takes what the library signs, once per webhook-id, refuses a bad signature,
// and tells an out-of-order case apart.
func TestReceiverVerifiesAndDeduplicates(t *testing.T) {
	r, err := StartReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if err := r.SetSecret(secret); err != nil {
		t.Fatal(err)
	}
	signer, _ := standardwebhooks.NewWebhook(secret)
	send := func(id string, ev events.Event, sign bool) int {
		body, _ := json.Marshal(webhookPayload{Type: ev.Type, Timestamp: time.Now(), Data: ev})
		now := time.Now()
		sig, _ := signer.Sign(id, now, body)
		if !sign {
			sig = "v1,AAAA"
		}
		req, _ := http.NewRequest("POST", r.URL(), bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	e1 := events.Event{ID: "refund-1/1", Type: "refund.received", CaseID: "refund-1", Seq: 1, OccurredAt: time.Now()}
	e2 := events.Event{ID: "refund-1/2", Type: "refund.paid", CaseID: "refund-1", Seq: 2, OccurredAt: time.Now()}
	if got := send(e1.ID, e1, true); got != 200 {
		t.Fatalf("signed delivery answered %d", got)
	}
	if got := send(e1.ID, e1, true); got != 200 {
		t.Fatalf("repeated delivery answered %d", got)
	}
	if got := send(e2.ID, e2, false); got != 401 {
		t.Fatalf("badly signed delivery answered %d", got)
	}
	if len(r.Events()) != 1 || r.Events()[0].Deliveries != 2 || r.Refused() != 1 {
		t.Fatalf("events %+v refused %d", r.Events(), r.Refused())
	}
	send(e2.ID, e2, true)
	if err := r.OrderKept(); err != nil {
		t.Fatal(err)
	}
	e0 := events.Event{ID: "refund-1/0", Type: "refund.received", CaseID: "refund-1", Seq: 0, OccurredAt: time.Now()}
	send("refund-1/0", e0, true)
	if r.OrderKept() == nil {
		t.Fatal("an event older than one received was not noticed")
	}
}
