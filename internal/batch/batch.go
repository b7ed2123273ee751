// Package batch reads the back office's batch files: CSV with a header row or JSON Lines,
// one refund claim, declaration submission or account event per line, in a versioned
// schema (api/batch-line.schema.json). A file is refused whole when it cannot be trusted
// at all (not UTF-8, an unknown column or schema version, empty, too large, another
// tenant's); otherwise every line is judged alone, with the same validation the HTTP API
// applies to the same request (internal/contract), and a bad line names its field.
//
// The package is pure: no I/O, no clock, so the parser can be fuzzed and the same bytes
// always give the same lines.
package batch

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/ndfl"
)

// SchemaVersion is the only version of the line schema this build reads.
const SchemaVersion = 1

// Line kinds.
const (
	KindRefund       = "refund"
	KindDeclaration  = "declaration"
	KindAccountEvent = "account_event"
)

// Prefixes of the documents bucket the pipeline uses. A back office writes to
// inbox/<tenant>/; the batch moves the file to processed/ or rejected/ and writes its
// report to reports/<tenant>/.
const (
	InboxPrefix     = "inbox/"
	ProcessedPrefix = "processed/"
	RejectedPrefix  = "rejected/"
	ReportsPrefix   = "reports/"
)

// Limits bound what one file may hold.
type Limits struct {
	MaxBytes int64 // the whole file
	MaxLines int   // data lines, header excluded
}

// DefaultLimits: 64 MiB and 200,000 lines (a night's claims of a large bank, about 300
// bytes a line); a larger file is split by its sender.
var DefaultLimits = Limits{MaxBytes: 64 << 20, MaxLines: 200_000}

// Refusal is why a whole file is refused. Code is stable (for machines), Reason is for
// people; neither repeats the file's content.
type Refusal struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Reason }

// Refusal codes.
const (
	RefusedEmpty         = "empty"
	RefusedTooLarge      = "too_large"
	RefusedNotUTF8       = "not_utf8"
	RefusedFormat        = "unknown_format"
	RefusedHeader        = "unknown_header"
	RefusedSchemaVersion = "unknown_schema_version"
	RefusedTenant        = "wrong_tenant"
	RefusedCSV           = "invalid_csv"
)

// Line is one data line, valid (Errors empty) or not.
type Line struct {
	No         int    `json:"no"` // 1-based line number in the file (the CSV header is line 1)
	Kind       string `json:"kind,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	// Exactly one of these is set on a valid line.
	Refund      *contract.RefundRequest `json:"refund,omitempty"`
	Declaration *DeclarationLine        `json:"declaration,omitempty"`
	Event       *EventLine              `json:"event,omitempty"`
	// Hash is the SHA-256 of the line's content in canonical form: a repeated external
	// id with other content is an error, with the same content a duplicate.
	Hash string `json:"hash,omitempty"`
	// DuplicateOf is the earlier line of this file with the same external id and content.
	DuplicateOf int                 `json:"duplicate_of,omitempty"`
	Errors      []domain.FieldError `json:"errors,omitempty"`
	// Uploader is who uploaded the file, as recorded when its upload URL was issued
	// (Grant): each line is authorized as the request it stands for, with these scopes and
	// this role. A line without it (a file put into the inbox some other way) is refused.
	Uploader *Uploader `json:"uploader,omitempty"`
}

// Uploader is the principal of the API key that asked for a batch file's upload URL.
type Uploader struct {
	Principal string   `json:"principal"`
	Tenant    string   `json:"tenant"`
	Role      string   `json:"role"`
	Scopes    []string `json:"scopes"`
	KeyID     string   `json:"key_id,omitempty"`
	BoundTo   string   `json:"bound_to,omitempty"`
	Person    string   `json:"person,omitempty"`
}

// Grant is what the API records when it issues a batch upload URL: the object key the
// URL may write, who asked, and until when. The upload carries the grant's id as signed
// object metadata (GrantMetadata), so a file is judged with the scopes of the key that
// was given its URL, and only with those.
type Grant struct {
	ID        string   `json:"id"`
	Key       string   `json:"key"`
	Uploader  Uploader `json:"uploader"`
	ExpiresAt int64    `json:"expires_at"` // Unix seconds: the URL's expiry
}

// GrantMetadata is the object metadata (x-amz-meta-taxflow-grant) that names the grant
// of an upload.
const GrantMetadata = "taxflow-grant"

// GrantsPrefix is where grants lie in the documents bucket (under the batches' work
// prefix, which a lifecycle rule expires).
const GrantsPrefix = "batches/grants/"

var grantIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// GrantKey is the object key of a grant; ok is false for an id that is not one.
func GrantKey(id string) (string, bool) {
	if !grantIDRE.MatchString(id) {
		return "", false
	}
	return GrantsPrefix + id + ".json", true
}

// DeclarationLine is a declaration submission: the 3-НДФЛ as JSON and its confirmation.
type DeclarationLine struct {
	INN                   string          `json:"inn"`
	Declaration           json.RawMessage `json:"declaration"`
	ConfirmationMethod    string          `json:"confirmation_method"`
	ConfirmationReference string          `json:"confirmation_reference"`
	ClaimsRefund          bool            `json:"claims_refund,omitempty"`
}

// EventLine is an account event; its event id is the line's external id.
type EventLine struct {
	INN   string                `json:"inn"`
	Event contract.AccountEvent `json:"event"`
}

// Valid tells whether the line may start or reach a case.
func (l Line) Valid() bool { return len(l.Errors) == 0 }

// ErrorText joins the line's field errors for a report.
func (l Line) ErrorText() string {
	parts := make([]string, len(l.Errors))
	for i, e := range l.Errors {
		parts[i] = e.Field + ": " + e.Reason
	}
	return strings.Join(parts, "; ")
}

// Format of a file, by its name.
type Format string

// Formats.
const (
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// Object is where a file lies: inbox/<tenant>/<name>.
type Object struct {
	Tenant string
	Name   string
	Format Format
}

// ParseKey reads an inbox key. A key outside inbox/<tenant>/, or a name without a known
// extension, is refused.
func ParseKey(key string) (Object, *Refusal) {
	rest, ok := strings.CutPrefix(key, InboxPrefix)
	tenant, name, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !tenantRE.MatchString(tenant) || name == "" || strings.Contains(name, "/") {
		return Object{}, &Refusal{RefusedTenant, "a batch file must lie directly in inbox/<tenant>/, with a tenant name of 2-63 lower-case letters, digits and '-'"}
	}
	var f Format
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		f = CSV
	case ".jsonl", ".ndjson":
		f = JSONL
	default:
		return Object{}, &Refusal{RefusedFormat, "the file name must end in .csv (CSV with a header row) or .jsonl (JSON Lines)"}
	}
	return Object{Tenant: tenant, Name: name, Format: f}, nil
}

// BatchID is the batch's workflow id: a hash of bucket, key and ETag, so that the same
// object-created event delivered twice names one batch, and no file name or tenant
// (which may carry personal data) appears in an id.
func BatchID(bucket, key, etag string) string {
	sum := sha256.Sum256([]byte(bucket + "\x00" + key + "\x00" + strings.Trim(etag, `"`)))
	return "batch-" + hex.EncodeToString(sum[:16])
}

// caseNS is the namespace of case ids derived from a tenant's external ids.
var caseNS = uuid.MustParse("5b6f2d64-8a0e-4b55-9a43-1c1f0e6a7f21")

// CaseKey is the opaque key of the case a tenant's line creates: the same tenant, kind
// and external id give the same case, whatever file carries the line and however often.
// It is a name-based UUID (RFC 9562 v5) so case ids keep the form the API checks.
func CaseKey(tenant, kind, externalID string) string {
	return uuid.NewSHA1(caseNS, []byte(tenant+"\x00"+kind+"\x00"+externalID)).String()
}

var fieldNameRE = regexp.MustCompile(`^[a-z][a-z_]{0,39}$`)

var externalIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)

// Columns of the CSV form (and the fields of a JSON line).
var (
	required = []string{"schema_version", "kind", "external_id"}
	known    = map[string]bool{"schema_version": true, "kind": true, "external_id": true, "tenant": true,
		"inn": true, "period": true, "amount_kopecks": true, "reason": true, "bik": true, "account": true,
		"declaration": true, "confirmation_method": true, "confirmation_reference": true,
		"event_type": true, "at": true}
	// perKind lists the fields a kind may fill; others must be empty.
	perKind = map[string]map[string]bool{
		KindRefund:       {"inn": true, "period": true, "amount_kopecks": true, "reason": true, "bik": true, "account": true},
		KindDeclaration:  {"declaration": true, "confirmation_method": true, "confirmation_reference": true},
		KindAccountEvent: {"inn": true, "event_type": true, "at": true},
	}
)

// Parse reads a whole file. tenant is the tenant of the inbox prefix it lies in; now is
// the day tax periods are judged against. A non-nil Refusal means nothing of the file
// may start a case.
func Parse(data []byte, f Format, tenant string, now time.Time, lim Limits) ([]Line, *Refusal) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, &Refusal{RefusedEmpty, "the file is empty"}
	case int64(len(data)) > lim.MaxBytes:
		return nil, &Refusal{RefusedTooLarge, fmt.Sprintf("the file is larger than %d bytes; split it", lim.MaxBytes)}
	case !utf8.Valid(data):
		return nil, &Refusal{RefusedNotUTF8, "the file is not valid UTF-8; save it as UTF-8"}
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a BOM some spreadsheets write
	var recs []record
	var ref *Refusal
	switch f {
	case CSV:
		recs, ref = readCSV(data, lim)
	case JSONL:
		recs, ref = readJSONL(data, lim)
	default:
		return nil, &Refusal{RefusedFormat, "the format must be csv or jsonl"}
	}
	if ref != nil {
		return nil, ref
	}
	if len(recs) == 0 {
		return nil, &Refusal{RefusedEmpty, "the file has no data lines"}
	}
	lines := make([]Line, 0, len(recs))
	seen := map[string]int{} // kind+external id → index in lines
	for _, r := range recs {
		if r.errs == nil {
			// A version is the file's, not the line's: a reader of another version would
			// read every line differently, so any unknown version refuses the whole file.
			if v := r.fields["schema_version"]; v != strconv.Itoa(SchemaVersion) {
				return nil, &Refusal{RefusedSchemaVersion, fmt.Sprintf("line %d: schema_version must be %d; this file's version is not supported", r.no, SchemaVersion)}
			}
			if t, ok := r.fields["tenant"]; ok && t != "" && t != tenant {
				return nil, &Refusal{RefusedTenant, fmt.Sprintf("line %d names another tenant than the inbox the file lies in", r.no)}
			}
		}
		l := validate(r, now)
		if l.Valid() {
			k := l.Kind + "\x00" + l.ExternalID
			if i, ok := seen[k]; ok {
				if lines[i].Hash != l.Hash {
					l.Errors = []domain.FieldError{{Field: "external_id", Reason: fmt.Sprintf("already used by line %d of this file with other content", lines[i].No)}}
				} else {
					l.DuplicateOf = lines[i].No
				}
			} else {
				seen[k] = len(lines)
			}
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// record is one line's raw fields, or the errors that kept them from being read.
type record struct {
	no     int
	fields map[string]string
	decl   json.RawMessage // a JSON line's declaration object as sent
	errs   []domain.FieldError
}

func readCSV(data []byte, lim Limits) ([]record, *Refusal) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // a short line is a line error, not the file's
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, &Refusal{RefusedHeader, "the first line must be a CSV header row"}
	}
	cols := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if !known[h] {
			return nil, &Refusal{RefusedHeader, fmt.Sprintf("column %d of the header is not a column of schema version %d", i+1, SchemaVersion)}
		}
		if cols[h] {
			return nil, &Refusal{RefusedHeader, fmt.Sprintf("column %s appears twice in the header", h)}
		}
		cols[h] = true
	}
	for _, c := range required {
		if !cols[c] {
			return nil, &Refusal{RefusedHeader, "the header must have the column " + c}
		}
	}
	var recs []record
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if len(recs) >= lim.MaxLines {
			return nil, &Refusal{RefusedTooLarge, fmt.Sprintf("the file has more than %d lines; split it", lim.MaxLines)}
		}
		if err != nil {
			// A broken quote swallows the rest of the file: nothing after it can be read
			// as the sender meant, so the file is refused rather than guessed.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return nil, &Refusal{RefusedCSV, fmt.Sprintf("line %d is not valid CSV; check its quotes", line)}
		}
		no, _ := r.FieldPos(0)
		rec := record{no: no, fields: map[string]string{}}
		if len(row) != len(header) {
			rec.errs = []domain.FieldError{{Field: "line", Reason: fmt.Sprintf("has %d fields, the header %d", len(row), len(header))}}
		} else {
			for i, v := range row {
				rec.fields[header[i]] = v
			}
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func readJSONL(data []byte, lim Limits) ([]record, *Refusal) {
	var recs []record
	no := 0
	for len(data) > 0 {
		no++
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if len(recs) >= lim.MaxLines {
			return nil, &Refusal{RefusedTooLarge, fmt.Sprintf("the file has more than %d lines; split it", lim.MaxLines)}
		}
		recs = append(recs, readJSONLine(no, raw))
	}
	return recs, nil
}

func readJSONLine(no int, raw []byte) record {
	rec := record{no: no, fields: map[string]string{}}
	if !utf8.Valid(raw) { // never read with its bytes replaced (encoding/json would)
		rec.errs = []domain.FieldError{{Field: "line", Reason: "is not valid UTF-8"}}
		return rec
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&obj); err != nil || dec.More() || obj == nil {
		rec.errs = []domain.FieldError{{Field: "line", Reason: "is not one JSON object"}}
		return rec
	}
	// A field given twice: encoding/json keeps the last value, a reader of the file may
	// see the first. The API refuses such a body; so does the line, whatever the values.
	if k, dup := duplicateKey(raw); dup {
		field := k
		if !fieldNameRE.MatchString(k) {
			field = "line"
		}
		rec.errs = []domain.FieldError{{Field: field, Reason: "is given twice: send each field once"}}
		return rec
	}
	for k, v := range obj {
		if !known[k] {
			// The name is echoed only when it looks like a field name: a stray key may be
			// anything, personal data included.
			field, reason := k, fmt.Sprintf("is not a field of schema version %d", SchemaVersion)
			if !fieldNameRE.MatchString(k) {
				field, reason = "line", fmt.Sprintf("has a field that is not a field of schema version %d", SchemaVersion)
			}
			rec.errs = append(rec.errs, domain.FieldError{Field: field, Reason: reason})
			continue
		}
		if k == "declaration" {
			rec.decl = v
			rec.fields[k] = "present"
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			rec.fields[k] = s
			continue
		}
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&n); err == nil {
			rec.fields[k] = n.String()
			continue
		}
		if string(v) == "null" {
			continue
		}
		rec.errs = append(rec.errs, domain.FieldError{Field: k, Reason: "must be a string or a number"})
	}
	if _, ok := rec.fields["schema_version"]; !ok && rec.errs == nil {
		rec.errs = []domain.FieldError{{Field: "schema_version", Reason: "is required"}}
	}
	sortErrors(rec.errs)
	return rec
}

// duplicateKey names the first top-level key of a JSON object that comes twice (the keys
// compared as decoded, so an escaped spelling of a name is the name).
func duplicateKey(raw []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, _ := t.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

func sortErrors(errs []domain.FieldError) {
	// Map iteration order must not leak into the report: the same file, the same report.
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Field < errs[j-1].Field; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// validate judges one line as the API judges the same request.
func validate(r record, now time.Time) Line {
	l := Line{No: r.no, Errors: r.errs}
	if r.errs != nil {
		return l
	}
	f := r.fields
	l.Kind, l.ExternalID = f["kind"], f["external_id"]
	allowed, ok := perKind[l.Kind]
	if !ok {
		l.Errors = []domain.FieldError{{Field: "kind", Reason: "must be refund, declaration or account_event"}}
		return l
	}
	var errs []domain.FieldError
	if !externalIDRE.MatchString(l.ExternalID) {
		errs = append(errs, domain.FieldError{Field: "external_id", Reason: "1-100 letters, digits, '.', '_', ':' or '-'; unique per tenant and kind"})
	}
	for k, v := range f {
		if v != "" && !allowed[k] && k != "schema_version" && k != "kind" && k != "external_id" && k != "tenant" {
			errs = append(errs, domain.FieldError{Field: k, Reason: "is not a field of a " + l.Kind + " line; leave it empty"})
		}
	}
	switch l.Kind {
	case KindRefund:
		req := contract.RefundRequest{INN: f["inn"], Reason: f["reason"], BIK: f["bik"], Account: f["account"]}
		var bad bool
		if req.Period, bad = atoi(f["period"]); bad {
			errs = append(errs, domain.FieldError{Field: "period", Reason: "must be a whole number (a year)"})
		}
		var amount int
		if amount, bad = atoi(f["amount_kopecks"]); bad {
			errs = append(errs, domain.FieldError{Field: "amount_kopecks", Reason: "must be a whole number (no fraction, no exponent)"})
		}
		req.Amount = int64(amount)
		for _, e := range req.Validate(now) {
			if (e.Field == "period" || e.Field == "amount_kopecks") && hasField(errs, e.Field) {
				continue
			}
			errs = append(errs, e)
		}
		l.Refund = &req
	case KindDeclaration:
		d := DeclarationLine{ConfirmationMethod: f["confirmation_method"], ConfirmationReference: f["confirmation_reference"]}
		body := r.decl
		if body == nil && f["declaration"] != "" {
			body = json.RawMessage(f["declaration"])
		}
		if body == nil {
			errs = append(errs, domain.FieldError{Field: "declaration", Reason: "is required: the 3-НДФЛ as a JSON object"})
		} else if decl, err := ndfl.Parse(body, "json"); err != nil {
			errs = append(errs, domain.FieldError{Field: "declaration", Reason: "cannot be read as a 3-НДФЛ in JSON"})
		} else if err := domain.ValidateINN("declaration.inn", decl.INN, true); err != nil {
			errs = append(errs, err.(domain.FieldError))
		} else {
			var compact bytes.Buffer
			_ = json.Compact(&compact, body)
			d.Declaration, d.INN, d.ClaimsRefund = compact.Bytes(), decl.INN, decl.DeclaredRefund > 0
		}
		errs = append(errs, contract.ValidateConfirmation("confirmation_method", "confirmation_reference", d.ConfirmationMethod, d.ConfirmationReference)...)
		l.Declaration = &d
	case KindAccountEvent:
		ev := contract.AccountEvent{EventID: l.ExternalID, Type: f["event_type"]}
		if at := f["at"]; at != "" {
			t, err := time.Parse(time.RFC3339, at)
			if err != nil {
				errs = append(errs, domain.FieldError{Field: "at", Reason: "must be a time in RFC 3339 (2026-11-23T10:00:00+03:00)"})
			}
			ev.At = t.UTC()
		}
		if err := domain.ValidateINN("inn", f["inn"], true); err != nil {
			errs = append(errs, err.(domain.FieldError))
		}
		for _, e := range ev.Validate() {
			switch e.Field {
			case "event_id":
				if !hasField(errs, "external_id") {
					errs = append(errs, domain.FieldError{Field: "external_id", Reason: e.Reason})
				}
			case "type":
				errs = append(errs, domain.FieldError{Field: "event_type", Reason: e.Reason})
			default:
				errs = append(errs, e)
			}
		}
		l.Event = &EventLine{INN: f["inn"], Event: ev}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return Line{No: l.No, Kind: l.Kind, ExternalID: l.ExternalID, Errors: errs}
	}
	canon, _ := json.Marshal(struct {
		R *contract.RefundRequest `json:"r,omitempty"`
		D *DeclarationLine        `json:"d,omitempty"`
		E *EventLine              `json:"e,omitempty"`
	}{l.Refund, l.Declaration, l.Event})
	sum := sha256.Sum256(canon)
	l.Hash = hex.EncodeToString(sum[:])
	return l
}

func hasField(errs []domain.FieldError, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

// atoi reads a whole number; empty is 0 (the validator then names the field).
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err != nil
}
