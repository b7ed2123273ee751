package api

import (
	"testing"
	"time"

	"github.com/taxflow/taxflow/workflows"
)

// Every message whose content runs from its time is stamped with the time the API
// accepted it — a time the client sent is overwritten — and other messages pass unchanged.
func TestStampTimeSetsTheAcceptanceTime(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	forged := now.Add(-400 * 24 * time.Hour)
	for _, c := range []struct {
		in  any
		got func(any) time.Time
	}{
		{workflows.DeclarationDecision{At: forged}, func(v any) time.Time { return v.(workflows.DeclarationDecision).At }},
		{workflows.DocumentRequest{At: forged}, func(v any) time.Time { return v.(workflows.DocumentRequest).At }},
		{workflows.Appeal{At: forged}, func(v any) time.Time { return v.(workflows.Appeal).At }},
		{workflows.SpecialistRequest{At: forged}, func(v any) time.Time { return v.(workflows.SpecialistRequest).At }},
		{workflows.DeclarationSubmission{Key: "k", At: forged}, func(v any) time.Time { return v.(workflows.DeclarationSubmission).At }},
		{workflows.IdentitySubmission{At: forged}, func(v any) time.Time { return v.(workflows.IdentitySubmission).At }},
		{workflows.DocumentRef{DocID: "d", At: forged}, func(v any) time.Time { return v.(workflows.DocumentRef).At }},
	} {
		if got := c.got(stampTime(c.in, now)); !got.Equal(now) {
			t.Errorf("%T stamped %v, want %v", c.in, got, now)
		}
	}
	if got := stampTime(workflows.RefundDecision{Approve: true}, now); got != (workflows.RefundDecision{Approve: true}) {
		t.Errorf("a message without a time changed: %+v", got)
	}
}
