package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"

	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// feedDB is the API's fake store with the feed's query modelled: a tenant's entries after
// a position, ascending, a page of Limit, read consistently.
type feedDB struct {
	*storetest.DB
	feed    []events.FeedEntry
	queries []*dynamodb.QueryInput
}

func (f *feedDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if aws.ToString(in.TableName) != "feed" {
		return f.DB.Query(ctx, in, o...)
	}
	f.queries = append(f.queries, in)
	if aws.ToString(in.KeyConditionExpression) != "#t = :t AND #p > :p" || !aws.ToBool(in.ConsistentRead) || !aws.ToBool(in.ScanIndexForward) {
		return nil, fmt.Errorf("feedDB: query not modelled: %+v", in)
	}
	tenant := in.ExpressionAttributeValues[":t"].(*types.AttributeValueMemberS).Value
	after, _ := strconv.ParseInt(in.ExpressionAttributeValues[":p"].(*types.AttributeValueMemberN).Value, 10, 64)
	var entries []events.FeedEntry
	for _, e := range f.feed {
		if e.Tenant == tenant && e.Pos > after {
			entries = append(entries, e)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Pos < entries[j].Pos })
	if l := int(aws.ToInt32(in.Limit)); len(entries) > l {
		entries = entries[:l]
	}
	out := &dynamodb.QueryOutput{}
	for _, e := range entries {
		av, err := store.Marshal(e)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, av)
	}
	return out, nil
}

// eventsServer has two tenants' feeds (bank-a: 7 events, bank-b: 3) and keys of each, of
// staff bound to bank-b, of unbound staff, and of bank-a without the scope.
func eventsServer(t *testing.T) (http.Handler, *feedDB) {
	t.Helper()
	s, keys := newTestServer()
	db := &feedDB{DB: s.DB.(*storetest.DB)}
	s.DB, s.Events = db, "feed"
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	add := func(tenant, caseID string, n int) {
		for i := 1; i <= n; i++ {
			pos := int64(1)
			for _, e := range db.feed {
				if e.Tenant == tenant {
					pos++
				}
			}
			ev := events.Event{ID: events.ID(caseID, int64(i)), Type: "refund.received", CaseID: caseID, Process: "refund", Status: "received",
				StatusLabel: "Принято", Seq: int64(i), OccurredAt: at.Add(time.Duration(pos) * time.Second)}
			db.feed = append(db.feed, events.FeedEntry{Event: ev, Tenant: tenant, Pos: pos, RelayedAt: at, ExpiresAt: at.Unix()})
		}
	}
	add("bank-a", "refund-a1", 4)
	add("bank-b", "refund-b1", 3)
	add("bank-a", "refund-a2", 3)
	keys.Add("a-key", Principal{ID: "bank-a/integrator", Tenant: "bank-a", Role: RoleIntegrator, Scopes: []string{ScopeEventsRead}})
	keys.Add("b-key", Principal{ID: "bank-b/integrator", Tenant: "bank-b", Role: RoleIntegrator, Scopes: []string{ScopeEventsRead}})
	keys.Add("a-noscope", Principal{ID: "bank-a/reader", Tenant: "bank-a", Role: RoleIntegrator, Scopes: []string{ScopeRefundsRead}})
	keys.Add("staff-b", Principal{ID: "tax-office/operator/b", Tenant: TaxOffice, Role: RoleOperator, BoundTo: "bank-b", Scopes: []string{ScopeEventsRead}})
	keys.Add("staff-all", Principal{ID: "tax-office/operator", Tenant: TaxOffice, Role: RoleOperator, Scopes: []string{ScopeEventsRead}})
	return s.Handler(), db
}

func readEvents(t *testing.T, h http.Handler, key, query string) EventPage {
	t.Helper()
	rec := do(h, "GET", "/v1/events?"+query, key, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("%s ?%s: %d %s", key, query, rec.Code, rec.Body)
	}
	var p EventPage
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Next == "" || p.Events == nil {
		t.Fatalf("a page without next or events: %+v", p)
	}
	return p
}

// Paging with next reads a tenant's feed in order, each event once, then polls at the end
// with the same cursor; another tenant's events never appear.
func TestEventsFeedPagesTheCallersTenantOnly(t *testing.T) {
	h, _ := eventsServer(t)
	for key, want := range map[string][]string{
		"a-key":   {"refund-a1/1", "refund-a1/2", "refund-a1/3", "refund-a1/4", "refund-a2/1", "refund-a2/2", "refund-a2/3"},
		"b-key":   {"refund-b1/1", "refund-b1/2", "refund-b1/3"},
		"staff-b": {"refund-b1/1", "refund-b1/2", "refund-b1/3"}, // staff bound to bank-b read bank-b's
	} {
		var got []string
		cursor := ""
		for i := 0; i < 10; i++ {
			p := readEvents(t, h, key, "limit=2&after="+url.QueryEscape(cursor))
			for _, e := range p.Events {
				got = append(got, e.ID)
			}
			if len(p.Events) == 0 {
				if p.Next != cursor && cursor != "" {
					t.Fatalf("%s: at the end next moved from %q to %q", key, cursor, p.Next)
				}
				break
			}
			cursor = p.Next
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s read %v, want %v", key, got, want)
		}
	}
	// Another tenant's cursor only positions within the caller's own feed.
	p := readEvents(t, h, "b-key", "after="+encodeCursor(1))
	for _, e := range p.Events {
		if !strings.HasPrefix(e.CaseID, "refund-b") {
			t.Fatalf("bank-b read %s", e.ID)
		}
	}
	// The default page is 100; the whole feed of bank-a fits.
	if p := readEvents(t, h, "a-key", ""); len(p.Events) != 7 || p.Next != encodeCursor(7) {
		t.Fatalf("default page: %d events, next %q", len(p.Events), p.Next)
	}
}

func TestEventsFeedRefusesBadCursorsAndLimits(t *testing.T) {
	h, db := eventsServer(t)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct{ query, field string }{
		{"after=not-base64!", "after"},
		{"after=" + b64("-1"), "after"},
		{"after=" + b64("1e3"), "after"},
		{"after=" + b64("007"), "after"}, // not the cursor the list gives for 7
		{"after=" + base64.URLEncoding.EncodeToString([]byte("7")), "after"},
		{"after=" + b64(`{"pos":3}`), "after"},
		{"after=" + b64("99999999999999999999"), "after"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=-3", "limit"},
		{"limit=ten", "limit"},
		{"limit=2.5", "limit"},
	} {
		rec := do(h, "GET", "/v1/events?"+c.query, "a-key", "")
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", c.query, rec.Code, rec.Body)
			continue
		}
		e := errorOf(t, rec)
		if len(e.Fields) != 1 || e.Fields[0].Field != c.field {
			t.Errorf("%s: fields %+v, want %s", c.query, e.Fields, c.field)
		}
	}
	if len(db.queries) != 0 {
		t.Fatalf("a refused request read the feed %d times", len(db.queries))
	}
	if p := readEvents(t, h, "a-key", "limit=500&after="+encodeCursor(7)); len(p.Events) != 0 || p.Next != encodeCursor(7) {
		t.Fatalf("after the end: %+v", p)
	}
}

// Without the scope: 403; staff bound to no tenant have no feed: 403; no key: 401.
func TestEventsFeedAuthorization(t *testing.T) {
	h, db := eventsServer(t)
	for key, want := range map[string]int{"a-noscope": 403, "staff-all": 403, "": 401, "guess": 401} {
		if rec := do(h, "GET", "/v1/events", key, ""); rec.Code != want {
			t.Errorf("%q: %d, want %d (%s)", key, rec.Code, want, rec.Body)
		}
	}
	if len(db.queries) != 0 {
		t.Fatalf("a refused caller read the feed")
	}
	if !slices.Contains(RoleScopes[RoleIntegrator], ScopeEventsRead) {
		t.Fatal("integrators do not hold events:read")
	}
	for role, scopes := range RoleScopes {
		if role != RoleIntegrator && slices.Contains(scopes, ScopeEventsRead) {
			t.Errorf("role %s holds events:read", role)
		}
	}
}

// The OpenAPI description's Event.type enum is exactly the list of event types, one per
// status of each process.
func TestOpenAPIEventTypesAreEveryStatusOfEveryProcess(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Event struct {
					Properties struct {
						Type struct {
							Enum []string `yaml:"enum"`
						} `yaml:"type"`
					} `yaml:"properties"`
				} `yaml:"Event"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Components.Schemas.Event.Properties.Type.Enum
	want := EventTypes()
	if !slices.Equal(got, want) {
		t.Fatalf("openapi.yaml Event.type enum\n%v\nwant (EventTypes)\n%v", got, want)
	}
	for _, must := range []string{"refund.paid", "identity.verified", "declaration.clarification_required", "account.active", "batch.done"} {
		if !slices.Contains(want, must) {
			t.Errorf("%s is not an event type", must)
		}
	}
}
