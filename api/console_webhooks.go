package api

import (
	"net/http"
	"time"

	"github.com/taxflow/taxflow/internal/webhooks"
)

// webhookRow is a failing or disabled endpoint on the console.
type webhookRow struct {
	ID, Tenant, Host, Status, Reason string
	FailingSince, DisabledAt         time.Time
}

type webhooksData struct {
	layoutData
	Rows []webhookRow
	All  bool // the staff see every tenant's
}

// consoleWebhooks lists the endpoints whose deliveries fail, or that were disabled for
// it, of the tenants the operator acts for: staff bound to a tenant see its endpoints
// only; unbound tax-office staff see every tenant's. Only the URL's host is shown.
func (s *Server) consoleWebhooks(w http.ResponseWriter, r *http.Request) {
	sess := consoleSession(r)
	p := sess.Account().Principal()
	if !p.Can(ScopeOperate) {
		s.consoleMessage(w, r, http.StatusForbidden, "Нет доступа", "Вебхуки видны операторам ("+sess.Role+").")
		return
	}
	if s.Webhooks.Store == nil {
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Вебхуки не настроены.")
		return
	}
	o := actsFor(p)
	es, err := s.Webhooks.Store.Endpoints(r.Context(), o.tenant) // "" when the staff act for all
	if err != nil {
		s.Log.Error().Err(err).Msg("console: list webhook endpoints")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Повторите позже.")
		return
	}
	a := sess.Account()
	d := webhooksData{layoutData: layoutData{Title: "Вебхуки", Staff: &a, CSRF: sess.CSRF}, All: o.all}
	for _, e := range es {
		if e.Status != webhooks.StatusDisabled && e.FailingSince == 0 {
			continue
		}
		if !o.all && e.Tenant != o.tenant {
			continue
		}
		row := webhookRow{ID: e.EndpointID, Tenant: e.Tenant, Host: hostOf(e.URL), Status: e.Status, Reason: e.DisabledReason}
		if e.FailingSince != 0 {
			row.FailingSince = time.Unix(e.FailingSince, 0)
		}
		if e.DisabledAt != 0 {
			row.DisabledAt = time.Unix(e.DisabledAt, 0)
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, http.StatusOK, "webhooks", d)
}

func hostOf(raw string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(raw) > len(p) && raw[:len(p)] == p {
			raw = raw[len(p):]
		}
	}
	for i, c := range raw {
		if c == '/' || c == '?' || c == '#' {
			return raw[:i]
		}
	}
	return raw
}
