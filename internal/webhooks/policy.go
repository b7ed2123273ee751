package webhooks

import (
	"context"
	"errors"
	"fmt"

	"github.com/taxflow/taxflow/internal/contract"
)

// Normalize fills a policy's zero fields with the defaults.
func Normalize(p contract.WebhookPolicy) contract.WebhookPolicy {
	d := contract.DefaultWebhookPolicy()
	if p.BackoffBase <= 0 {
		p.BackoffBase = d.BackoffBase
	}
	if p.BackoffCap <= 0 {
		p.BackoffCap = d.BackoffCap
	}
	if p.GiveUpAfter <= 0 {
		p.GiveUpAfter = d.GiveUpAfter
	}
	if p.DisableAfter <= 0 {
		p.DisableAfter = d.DisableAfter
	}
	if p.Concurrency <= 0 {
		p.Concurrency = d.Concurrency
	}
	if p.PollFor <= 0 {
		p.PollFor = d.PollFor
	}
	return p
}

// UpdateEndpoint changes an endpoint by f over the revision it read, again on a
// conflict; f returns false when there is nothing to change. ok is false when there is
// no such endpoint.
func UpdateEndpoint(ctx context.Context, s Store, id string, f func(*Endpoint) bool) (e Endpoint, ok bool, err error) {
	for range 8 {
		e, found, err := s.GetEndpoint(ctx, id)
		if err != nil || !found {
			return e, false, err
		}
		if !f(&e) {
			return e, true, nil
		}
		old := e.Rev
		e.Rev = NewRev()
		err = s.PutEndpoint(ctx, e, old)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return e, true, err
	}
	return Endpoint{}, true, fmt.Errorf("update endpoint: %w (too many concurrent writes)", ErrConflict)
}
