package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// The events feed's page sizes.
const (
	eventsDefaultLimit = 100
	eventsMaxLimit     = 500
)

// EventTypes lists every event type ("<process>.<status>"), one per status of each
// process, sorted: the enum of the OpenAPI description's Event.type.
func EventTypes() []string {
	var out []string
	for process, labels := range map[string]map[string]string{procRefund: workflows.RefundLabels, procIdent: workflows.IdentityLabels,
		procDecl: workflows.DeclarationLabels, procAccount: workflows.AccountLabels} {
		for status := range labels {
			out = append(out, events.Type(process, status))
		}
	}
	for _, status := range []string{workflows.BatchReading, workflows.BatchImporting, workflows.BatchDone, workflows.BatchRefused, workflows.BatchGone} {
		out = append(out, events.Type("batch", status))
	}
	slices.Sort(out)
	return out
}

// EventPage is a page of a tenant's feed. Next is the cursor of what comes after the
// page, given even at the end: the caller polls with it.
type EventPage struct {
	Events []events.Event `json:"events"`
	Next   string         `json:"next"`
}

// encodeCursor is the opaque cursor after feed position pos.
func encodeCursor(pos int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(pos, 10)))
}

// decodeCursor is encodeCursor's inverse; anything else encodeCursor would not have made
// is refused ("" is the start).
func decodeCursor(c string) (int64, bool) {
	if c == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	pos, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || pos < 0 || encodeCursor(pos) != c {
		return 0, false
	}
	return pos, true
}

// listEvents answers GET /v1/events: the caller's tenant's feed after the cursor, in
// feed order (each case's events in their sequence order). The tenant is the caller's
// (a staff key bound to a tenant: that tenant's); tax-office staff bound to no tenant
// have no feed of their own (403).
func (s *Server) listEvents(c *call[none]) (reply, error) {
	v := c.r.URL.Query()
	var errs []domain.FieldError
	after, ok := decodeCursor(v.Get("after"))
	if !ok {
		errs = append(errs, domain.FieldError{Field: "after", Reason: "not a cursor this list gave (use the next of a page, or none to start)"})
	}
	limit := eventsDefaultLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > eventsMaxLimit {
			errs = append(errs, domain.FieldError{Field: "limit", Reason: fmt.Sprintf("must be 1 to %d", eventsMaxLimit)})
		}
		limit = n
	}
	if len(errs) > 0 {
		return reply{}, refuse(http.StatusBadRequest, "invalid_request", "", errs...)
	}
	o := actsFor(c.who())
	if o.all || o.tenant == "" {
		return reply{}, refuse(http.StatusForbidden, "forbidden", "the events feed is a tenant's: this key is bound to no tenant")
	}
	// Read consistently: a reader must never see a later position without an earlier one
	// and move its cursor past it.
	out, err := s.DB.Query(c.ctx(), &dynamodb.QueryInput{
		TableName: aws.String(s.Events), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#t = :t AND #p > :p"),
		ExpressionAttributeNames:  map[string]string{"#t": "tenant", "#p": "pos"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": store.S(o.tenant), ":p": &types.AttributeValueMemberN{Value: strconv.FormatInt(after, 10)}},
		ScanIndexForward:          aws.Bool(true), Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return reply{}, unavailable("read the events feed", err)
	}
	var entries []events.FeedEntry
	if err := store.UnmarshalList(out.Items, &entries); err != nil {
		return reply{}, unavailable("decode the events feed", err)
	}
	page := EventPage{Events: make([]events.Event, 0, len(entries)), Next: encodeCursor(after)}
	for _, e := range entries {
		if e.Tenant != o.tenant || e.Pos <= after { // never another tenant's, whatever the store answers
			return reply{}, unavailable("read the events feed", fmt.Errorf("the feed answered an entry of another tenant or position"))
		}
		page.Events = append(page.Events, e.Event)
		page.Next = encodeCursor(e.Pos)
	}
	return okReply(page), nil
}
