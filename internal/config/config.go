// Package config reads taxflow's configuration from the environment: the standard AWS
// and Temporal variables first, TAXFLOW_* for the rest. A bad value fails at start with
// the variable's name and the reason.
package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/taxflow/taxflow/internal/duedates"
	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/subject"
)

// Config is everything a taxflow process needs to know about where it runs.
type Config struct {
	AWS      AWS
	Temporal Temporal

	Prefix    string // TAXFLOW_PREFIX: prefix of every table, bucket and function name
	Invoker   string // TAXFLOW_INVOKER: "lambda" or "inprocess"
	APIAddr   string // TAXFLOW_API_ADDR
	LogFormat string // TAXFLOW_LOG_FORMAT: json or console
	LogLevel  string // TAXFLOW_LOG_LEVEL
	BuildDir  string // TAXFLOW_BUILD_DIR: where infra apply builds function binaries
	RoleARN   string // TAXFLOW_LAMBDA_ROLE_ARN: execution role for functions infra apply creates

	// TAXFLOW_TREASURY_MAX_TRANSFER: the local treasury's single-transfer limit, kopecks.
	TreasuryMaxTransfer int64

	Refund   Refund
	Identity Identity
	Account  Account
	// Declaration review (domain.md §2)
	Declaration Declaration
	// Inactive accounts (domain.md §5)
	Inactive Inactive
	// Tax rules kept as data, loaded and validated at start
	Data Data

	Codec Codec

	Metrics Metrics

	Webhook Webhook

	// Subject is the keyring of TaxflowSubject (TAXFLOW_SUBJECT_KEY, the current
	// version; TAXFLOW_SUBJECT_KEYS_PREVIOUS, earlier versions kept for lookups). Only
	// the API needs it (RequireSubjectKey); it is a secret of its own, so rotating the
	// payload key changes no subject.
	Subject subject.Keyring
}

// RequireSubjectKey refuses a process that makes subjects (the API, the demo, the
// bench) when TAXFLOW_SUBJECT_KEY is not set: without it, cases could not be found by
// taxpayer and account workflow ids would not be stable. A malformed or short key has
// already stopped Load.
func (c Config) RequireSubjectKey() error {
	if c.Subject.IsZero() {
		return fmt.Errorf("configuration: %s is not set: it keys the hash of the INN that finds a taxpayer's cases and names their account; "+
			"set it to v1:<base64 of 32 random bytes> (echo v1:$(openssl rand -base64 32)); `taxflow stack env` prints the local stack's", subject.VarKey)
	}
	return nil
}

// Metrics configures the Prometheus endpoints (internal/metrics). Each is a host:port or
// "off"; the defaults listen on loopback only: a scraper elsewhere needs an address set.
type Metrics struct {
	WorkerAddr string // TAXFLOW_METRICS_ADDR (127.0.0.1:9464): the worker's /metrics
	APIAddr    string // TAXFLOW_API_METRICS_ADDR (127.0.0.1:9465): the API's /metrics
	// TAXFLOW_METRICS_BUSINESS_INTERVAL (1m): how often the worker reads the case
	// projections for the business gauges (only when the worker serves /metrics).
	BusinessInterval time.Duration
}

// Webhook configures webhook deliveries (functions/webhooks); the API hands it to each
// endpoint's workflow when it registers the endpoint.
type Webhook struct {
	BackoffBase  time.Duration // TAXFLOW_WEBHOOK_BACKOFF_BASE (5s): the first retry's ceiling, doubling
	BackoffCap   time.Duration // TAXFLOW_WEBHOOK_BACKOFF_CAP (1h)
	GiveUpAfter  time.Duration // TAXFLOW_WEBHOOK_GIVE_UP (72h): a delivery is failed this long after its first attempt
	DisableAfter time.Duration // TAXFLOW_WEBHOOK_DISABLE_AFTER (24h): every attempt failed this long → endpoint disabled
	Concurrency  int           // TAXFLOW_WEBHOOK_CONCURRENCY (4): sends at once per endpoint
	// TAXFLOW_WEBHOOK_ALLOW_LOOPBACK (false): http:// receivers on loopback are allowed.
	// The local stack's environment sets it; nothing else should.
	AllowLoopback bool
}

// Codec configures the codec server, which decrypts payloads for Temporal's Web UI and CLI.
type Codec struct {
	Addr string // TAXFLOW_CODEC_ADDR
	// TAXFLOW_CODEC_TOKEN: the local Web UI's credential, a path segment of its codec
	// endpoint (the UI sends no Authorization header without SSO); empty turns it off.
	Token string
	// TAXFLOW_CODEC_ORIGINS: browser origins (the Web UI's) that may call, comma-separated.
	Origins []string
}

// Inactive holds the inactivity job's terms [000:40].
type Inactive struct {
	Months int           // TAXFLOW_INACTIVE_MONTHS (12): no activity this long → notice
	Grace  time.Duration // TAXFLOW_INACTIVE_GRACE (1440h): notice → flagged for deletion
}

// Data are the tax-rule tables. Each file is optional (empty: the table built into the
// binary); Load reads and validates both, so a gap, an overlap or an unsorted entry
// stops the process at start with the file and the entry named.
type Data struct {
	KeyRateFile  string             // TAXFLOW_KEY_RATE_FILE: Bank of Russia key rates (internal/keyrate)
	DueDatesFile string             // TAXFLOW_DUE_DATES_FILE: statutory due dates (internal/duedates)
	KeyRates     *keyrate.Table     // loaded from KeyRateFile
	DueDates     *duedates.Schedule // loaded from DueDatesFile
}

// Declaration holds declaration review's terms, each counted by Tax Code art. 6.1.
type Declaration struct {
	ReviewMonths    int           // TAXFLOW_DECLARATION_REVIEW_MONTHS (3: the desk-audit term, art. 88 p.2)
	ReminderBefore  time.Duration // TAXFLOW_DECLARATION_REMINDER_BEFORE (336h)
	AppealMonths    int           // TAXFLOW_DECLARATION_APPEAL_MONTHS (1: from the decision's delivery, art. 139.1 p.2)
	ExplanationDays int           // TAXFLOW_DECLARATION_EXPLANATION_WORKING_DAYS (5: art. 88 p.3)
	DocumentDays    int           // TAXFLOW_DECLARATION_DOCUMENT_WORKING_DAYS (10: art. 93 p.3)
}

// Account holds the lockout policy (domain.md §4).
type Account struct {
	Threshold        int             // TAXFLOW_LOCK_THRESHOLD (5 [001:175]; [000:38] says 3)
	LockPeriods      []time.Duration // TAXFLOW_LOCK_PERIODS (15m,1h,24h)
	SpecialistAfter  int             // TAXFLOW_LOCK_SPECIALIST_AFTER (3: the third lock within 24 h [000:38])
	SelfServiceTries int             // TAXFLOW_UNBLOCK_SELF_SERVICE_TRIES (3)
	SpecialistSLA    time.Duration   // TAXFLOW_UNBLOCK_SPECIALIST_SLA (24h [001:193])
	ContinueAfter    int             // TAXFLOW_ACCOUNT_CONTINUE_AFTER (1000): events an account's run handles before it continues as new
}

// Identity holds identity verification's rules (domain.md §1).
type Identity struct {
	MaxAttempts          int           // TAXFLOW_IDENTITY_MAX_ATTEMPTS (3)
	ResubmitWait         time.Duration // TAXFLOW_IDENTITY_RESUBMIT_WAIT (30 days)
	ReviewSLAWorkingDays int           // TAXFLOW_IDENTITY_REVIEW_SLA_WORKING_DAYS (1)
	// TAXFLOW_IDENTITY_CONSENT_WAIT (696h = 29 days, at most 720h): withdrawn consent not
	// given again in this time closes the case and destroys its documents, inside the 30
	// days of 152-FZ art. 21 p.5.
	ConsentWait time.Duration
}

// Refund holds the refund process's rules (domain.md §3); the API hands them to each
// new case, so a running case keeps the rules it started with.
type Refund struct {
	DeadlineDays   int           // TAXFLOW_REFUND_DEADLINE_DAYS (30 [004:210])
	ReminderBefore time.Duration // TAXFLOW_REFUND_REMINDER_BEFORE
	DocumentWait   time.Duration // TAXFLOW_REFUND_DOCUMENT_WAIT
	RequisitesDays int           // TAXFLOW_REFUND_REQUISITES_WORKING_DAYS (5 [004:116])
	AutoApproveMax int64         // TAXFLOW_REFUND_AUTO_APPROVE_MAX, kopecks; 0 = off
}

// AWS holds the endpoints; empty means "the real AWS endpoint for the region".
type AWS struct {
	Region           string // AWS_REGION
	Endpoint         string // AWS_ENDPOINT_URL
	EndpointS3       string // AWS_ENDPOINT_URL_S3
	EndpointDynamoDB string // AWS_ENDPOINT_URL_DYNAMODB
	EndpointLambda   string // AWS_ENDPOINT_URL_LAMBDA
}

// Temporal holds the Temporal frontend's address and namespace, and the keys that
// encrypt every payload.
type Temporal struct {
	Address   string // TEMPORAL_ADDRESS
	Namespace string // TEMPORAL_NAMESPACE
	TaskQueue string // TAXFLOW_TASK_QUEUE
	// BatchCaseQueue is where batch lines start their cases (TAXFLOW_BATCH_CASE_QUEUE;
	// default: TaskQueue): a night's bulk load can run on a worker pool of its own.
	BatchCaseQueue string

	// TAXFLOW_PAYLOAD_KEY: base64 of 32 random bytes; TAXFLOW_PAYLOAD_KEYS_OLD: earlier
	// keys, comma-separated, that still decrypt after a rotation.
	PayloadKey     string
	OldPayloadKeys []string
}

// S3 returns the S3 endpoint, or "" for AWS.
func (a AWS) S3() string { return first(a.EndpointS3, a.Endpoint) }

// DynamoDB returns the DynamoDB endpoint, or "" for AWS.
func (a AWS) DynamoDB() string { return first(a.EndpointDynamoDB, a.Endpoint) }

// Lambda returns the Lambda endpoint, or "" for AWS.
func (a AWS) Lambda() string { return first(a.EndpointLambda, a.Endpoint) }

// Local tells whether any endpoint is set (LocalStack or the local stack).
func (a AWS) Local() bool { return a.S3() != "" || a.DynamoDB() != "" || a.Lambda() != "" }

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Variables lists every environment variable Load reads.
var Variables = []string{
	"AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_LAMBDA",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TAXFLOW_TASK_QUEUE", "TAXFLOW_PREFIX", "TAXFLOW_INVOKER",
	"TAXFLOW_API_ADDR", "TAXFLOW_LOG_FORMAT", "TAXFLOW_LOG_LEVEL", "TAXFLOW_BUILD_DIR", "TAXFLOW_LAMBDA_ROLE_ARN",
	"TAXFLOW_PAYLOAD_KEY", "TAXFLOW_PAYLOAD_KEYS_OLD", subject.VarKey, subject.VarPrevious, "TAXFLOW_TREASURY_MAX_TRANSFER", "TAXFLOW_REFUND_DEADLINE_DAYS", "TAXFLOW_REFUND_REMINDER_BEFORE",
	"TAXFLOW_REFUND_DOCUMENT_WAIT", "TAXFLOW_REFUND_REQUISITES_WORKING_DAYS", "TAXFLOW_REFUND_AUTO_APPROVE_MAX",
	"TAXFLOW_IDENTITY_MAX_ATTEMPTS", "TAXFLOW_IDENTITY_RESUBMIT_WAIT",
	"TAXFLOW_IDENTITY_REVIEW_SLA_WORKING_DAYS", "TAXFLOW_IDENTITY_CONSENT_WAIT", "TAXFLOW_LOCK_THRESHOLD", "TAXFLOW_LOCK_PERIODS", "TAXFLOW_LOCK_SPECIALIST_AFTER",
	"TAXFLOW_UNBLOCK_SELF_SERVICE_TRIES", "TAXFLOW_UNBLOCK_SPECIALIST_SLA", "TAXFLOW_ACCOUNT_CONTINUE_AFTER",
	"TAXFLOW_DECLARATION_REVIEW_MONTHS", "TAXFLOW_DECLARATION_REMINDER_BEFORE", "TAXFLOW_DECLARATION_APPEAL_MONTHS",
	"TAXFLOW_DECLARATION_EXPLANATION_WORKING_DAYS", "TAXFLOW_DECLARATION_DOCUMENT_WORKING_DAYS",
	"TAXFLOW_INACTIVE_MONTHS", "TAXFLOW_INACTIVE_GRACE", "TAXFLOW_KEY_RATE_FILE", "TAXFLOW_DUE_DATES_FILE",
	"TAXFLOW_CODEC_ADDR", "TAXFLOW_CODEC_TOKEN", "TAXFLOW_CODEC_ORIGINS",
	"TAXFLOW_METRICS_ADDR", "TAXFLOW_API_METRICS_ADDR", "TAXFLOW_METRICS_BUSINESS_INTERVAL",
	"TAXFLOW_WEBHOOK_BACKOFF_BASE", "TAXFLOW_WEBHOOK_BACKOFF_CAP", "TAXFLOW_WEBHOOK_GIVE_UP", "TAXFLOW_WEBHOOK_DISABLE_AFTER",
	"TAXFLOW_WEBHOOK_CONCURRENCY", "TAXFLOW_WEBHOOK_ALLOW_LOOPBACK",
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// codecTokenRE: a token travels in a URL path, so only URL-safe characters, and long
// enough not to be guessed.
var codecTokenRE = regexp.MustCompile(`^([A-Za-z0-9_-]{32,})?$`)

// Load reads the configuration through getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		AWS: AWS{
			Region:           r.str("AWS_REGION", ""),
			Endpoint:         r.url("AWS_ENDPOINT_URL"),
			EndpointS3:       r.url("AWS_ENDPOINT_URL_S3"),
			EndpointDynamoDB: r.url("AWS_ENDPOINT_URL_DYNAMODB"),
			EndpointLambda:   r.url("AWS_ENDPOINT_URL_LAMBDA"),
		},
		Temporal: Temporal{
			Address:        r.hostPort("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
			Namespace:      r.str("TEMPORAL_NAMESPACE", "default"),
			TaskQueue:      r.str("TAXFLOW_TASK_QUEUE", "taxflow"),
			BatchCaseQueue: r.str("TAXFLOW_BATCH_CASE_QUEUE", ""),
			PayloadKey:     r.str("TAXFLOW_PAYLOAD_KEY", ""),
		},
		Prefix:    r.match("TAXFLOW_PREFIX", "taxflow", prefixRE, "lower-case letters, digits and '-', starting with a letter, at most 31 characters"),
		Invoker:   r.oneOf("TAXFLOW_INVOKER", "lambda", "lambda", "inprocess"),
		APIAddr:   r.hostPort("TAXFLOW_API_ADDR", "127.0.0.1:8080"),
		LogFormat: r.oneOf("TAXFLOW_LOG_FORMAT", "json", "json", "console"),
		LogLevel:  r.oneOf("TAXFLOW_LOG_LEVEL", "info", "trace", "debug", "info", "warn", "error"),
		BuildDir:  r.str("TAXFLOW_BUILD_DIR", "bin/functions"),
		RoleARN:   r.str("TAXFLOW_LAMBDA_ROLE_ARN", "arn:aws:iam::000000000000:role/taxflow-local"),

		TreasuryMaxTransfer: r.kopecks("TAXFLOW_TREASURY_MAX_TRANSFER", 100_000_000),
		Declaration: Declaration{
			ReviewMonths:    int(r.number("TAXFLOW_DECLARATION_REVIEW_MONTHS", 3, 1, 24)),
			ReminderBefore:  r.duration("TAXFLOW_DECLARATION_REMINDER_BEFORE", 14*24*time.Hour),
			AppealMonths:    int(r.number("TAXFLOW_DECLARATION_APPEAL_MONTHS", 1, 1, 12)),
			ExplanationDays: int(r.number("TAXFLOW_DECLARATION_EXPLANATION_WORKING_DAYS", 5, 1, 60)),
			DocumentDays:    int(r.number("TAXFLOW_DECLARATION_DOCUMENT_WORKING_DAYS", 10, 1, 60)),
		},
		Inactive: Inactive{
			Months: int(r.number("TAXFLOW_INACTIVE_MONTHS", 12, 1, 120)),
			Grace:  r.duration("TAXFLOW_INACTIVE_GRACE", 60*24*time.Hour),
		},
		Data: Data{KeyRateFile: r.str("TAXFLOW_KEY_RATE_FILE", ""), DueDatesFile: r.str("TAXFLOW_DUE_DATES_FILE", "")},
		Account: Account{
			Threshold:        int(r.number("TAXFLOW_LOCK_THRESHOLD", 5, 1, 100)),
			LockPeriods:      r.durations("TAXFLOW_LOCK_PERIODS", []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour}),
			SpecialistAfter:  int(r.number("TAXFLOW_LOCK_SPECIALIST_AFTER", 3, 1, 20)),
			SelfServiceTries: int(r.number("TAXFLOW_UNBLOCK_SELF_SERVICE_TRIES", 3, 1, 10)),
			SpecialistSLA:    r.duration("TAXFLOW_UNBLOCK_SPECIALIST_SLA", 24*time.Hour),
			ContinueAfter:    int(r.number("TAXFLOW_ACCOUNT_CONTINUE_AFTER", 1000, 10, 100000)),
		},
		Identity: Identity{
			MaxAttempts:          int(r.number("TAXFLOW_IDENTITY_MAX_ATTEMPTS", 3, 1, 10)),
			ResubmitWait:         r.duration("TAXFLOW_IDENTITY_RESUBMIT_WAIT", 30*24*time.Hour),
			ReviewSLAWorkingDays: int(r.number("TAXFLOW_IDENTITY_REVIEW_SLA_WORKING_DAYS", 1, 1, 30)),
			ConsentWait:          r.duration("TAXFLOW_IDENTITY_CONSENT_WAIT", 29*24*time.Hour),
		},
		Metrics: Metrics{
			WorkerAddr:       r.hostPortOrOff("TAXFLOW_METRICS_ADDR", "127.0.0.1:9464"),
			APIAddr:          r.hostPortOrOff("TAXFLOW_API_METRICS_ADDR", "127.0.0.1:9465"),
			BusinessInterval: r.duration("TAXFLOW_METRICS_BUSINESS_INTERVAL", time.Minute),
		},
		Codec: Codec{
			Addr:    r.hostPort("TAXFLOW_CODEC_ADDR", "127.0.0.1:8089"),
			Token:   r.codecToken("TAXFLOW_CODEC_TOKEN"),
			Origins: r.origins("TAXFLOW_CODEC_ORIGINS", "http://127.0.0.1:8233,http://localhost:8233"),
		},
		Webhook: Webhook{
			BackoffBase:   r.duration("TAXFLOW_WEBHOOK_BACKOFF_BASE", 5*time.Second),
			BackoffCap:    r.duration("TAXFLOW_WEBHOOK_BACKOFF_CAP", time.Hour),
			GiveUpAfter:   r.duration("TAXFLOW_WEBHOOK_GIVE_UP", 72*time.Hour),
			DisableAfter:  r.duration("TAXFLOW_WEBHOOK_DISABLE_AFTER", 24*time.Hour),
			Concurrency:   int(r.number("TAXFLOW_WEBHOOK_CONCURRENCY", 4, 1, 32)),
			AllowLoopback: r.oneOf("TAXFLOW_WEBHOOK_ALLOW_LOOPBACK", "false", "true", "false") == "true",
		},
		Refund: Refund{
			DeadlineDays:   int(r.number("TAXFLOW_REFUND_DEADLINE_DAYS", 30, 1, 365)),
			ReminderBefore: r.duration("TAXFLOW_REFUND_REMINDER_BEFORE", 72*time.Hour),
			DocumentWait:   r.duration("TAXFLOW_REFUND_DOCUMENT_WAIT", 14*24*time.Hour),
			RequisitesDays: int(r.number("TAXFLOW_REFUND_REQUISITES_WORKING_DAYS", 5, 1, 60)),
			AutoApproveMax: r.number("TAXFLOW_REFUND_AUTO_APPROVE_MAX", 1_000_000, 0, 1<<50),
		},
	}
	if c.AWS.Region == "" {
		if !c.AWS.Local() {
			r.fail("AWS_REGION", "", "must be set when no AWS_ENDPOINT_URL* is given")
		}
		// A local endpoint ignores the region, but request signing needs one.
		c.AWS.Region = "us-east-1"
	}
	var err error
	if c.Data.KeyRates, err = keyrate.Open(c.Data.KeyRateFile, time.Now()); err != nil {
		r.fail("TAXFLOW_KEY_RATE_FILE", c.Data.KeyRateFile, err.Error())
	}
	if c.Data.DueDates, err = duedates.Open(c.Data.DueDatesFile); err != nil {
		r.fail("TAXFLOW_DUE_DATES_FILE", c.Data.DueDatesFile, err.Error())
	}
	if w := c.Identity.ConsentWait; w <= 0 || w > 30*24*time.Hour {
		r.fail("TAXFLOW_IDENTITY_CONSENT_WAIT", w.String(), "must be more than 0 and at most 720h: personal data are destroyed within 30 days of a withdrawal (152-FZ art. 21 p.5)")
	}
	if old := r.str("TAXFLOW_PAYLOAD_KEYS_OLD", ""); old != "" {
		c.Temporal.OldPayloadKeys = strings.Split(old, ",")
	}
	// The keys are secrets: an error names the variable and what is wrong, never the value.
	if c.Subject, err = subject.Parse(r.getenv(subject.VarKey), r.getenv(subject.VarPrevious)); err != nil {
		r.errs = append(r.errs, err.Error())
	}
	if len(r.errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(r.errs, "; "))
	}
	return c, nil
}

// reader collects every bad variable, so one start reports them all.
type reader struct {
	getenv func(string) string
	errs   []string
}

func (r *reader) fail(name, val, why string) {
	r.errs = append(r.errs, fmt.Sprintf("%s=%q %s", name, val, why))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) url(name string) string {
	v := r.str(name, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, v, "must be an http(s) URL such as http://127.0.0.1:4566")
		return ""
	}
	return strings.TrimRight(v, "/")
}

func (r *reader) hostPort(name, def string) string {
	v := r.str(name, def)
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		r.fail(name, v, "must be host:port")
		return def
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		r.fail(name, v, "port must be 1-65535")
	}
	_ = host
	return v
}

// hostPortOrOff is hostPort, or "" for "off" (the listener is not started).
func (r *reader) hostPortOrOff(name, def string) string {
	if r.getenv(name) == "off" {
		return ""
	}
	return r.hostPort(name, def)
}

func (r *reader) number(name string, def, lo, hi int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		r.fail(name, v, fmt.Sprintf("must be a whole number %d-%d", lo, hi))
		return def
	}
	return n
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	d, err := Duration(r.getenv, name, def)
	if err != nil {
		r.errs = append(r.errs, strings.TrimPrefix(err.Error(), "configuration: "))
		return def
	}
	return d
}

func (r *reader) durations(name string, def []time.Duration) []time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			r.fail(name, v, "must be positive durations separated by commas, such as 15m,1h,24h")
			return def
		}
		out = append(out, d)
	}
	return out
}

// codecToken reads a secret, so a bad value is named but never repeated.
func (r *reader) codecToken(name string) string {
	v := r.str(name, "")
	if !codecTokenRE.MatchString(v) {
		r.errs = append(r.errs, name+" must be empty or at least 32 URL-safe characters (A-Z, a-z, 0-9, '-', '_')")
		return ""
	}
	return v
}

// origins reads browser origins: scheme://host[:port], no path, as a browser sends them.
func (r *reader) origins(name, def string) []string {
	v := r.str(name, def)
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			r.fail(name, v, "must be origins such as http://127.0.0.1:8233, comma-separated")
			return nil
		}
		out = append(out, strings.TrimSuffix(o, "/"))
	}
	return out
}

func (r *reader) kopecks(name string, def int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		r.fail(name, v, "must be a positive whole number of kopecks")
		return def
	}
	return n
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}

func (r *reader) match(name, def string, re *regexp.Regexp, what string) string {
	v := r.str(name, def)
	if !re.MatchString(v) {
		r.fail(name, v, "must be "+what)
	}
	return v
}

// Duration reads a Go duration variable (for example "720h"), used by later settings.
func Duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("configuration: %s=%q must be a positive duration such as 24h or 15m", name, v)
	}
	return d, nil
}

// Name is the deployed name of a logical resource ("audit" → "taxflow-audit").
func (c Config) Name(logical string) string { return c.Prefix + "-" + logical }
