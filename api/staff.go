package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/taxflow/taxflow/internal/store"
)

// Tables of the staff console: staff accounts (hashed passwords, lockout) and their
// sign-in sessions (server-side, expiring).
const (
	StaffTable    = "staff_accounts"
	SessionsTable = "staff_sessions"
)

// Staff sign-in rules.
const (
	// MaxPasswordFailures sign-in attempts in a row without a success, from one client
	// address, close sign-in to that login from that address for StaffLockout; each
	// further lock of the same login and address lasts twice as long, up to
	// MaxStaffLockout. A lock never holds for other addresses, and never for good.
	MaxPasswordFailures = 5
	StaffLockout        = 15 * time.Minute
	MaxStaffLockout     = 4 * time.Hour
	// SessionTTL is how long a session lives from sign-in, whatever the activity: a
	// forgotten browser on a shared desk does not stay signed in past a working day.
	SessionTTL = 8 * time.Hour
	// MinPasswordChars is the shortest password an account may have.
	MinPasswordChars = 12
)

// Errors of sign-in; the console shows one message for unknown login and wrong password.
var (
	ErrBadCredentials = errors.New("wrong login or password")
	ErrStaffLocked    = errors.New("the account is locked after too many wrong passwords; try again later")
	ErrStaffExists    = errors.New("a staff account with this login exists already")
	ErrNoStaff        = errors.New("no staff account with this login")
)

var loginRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,62}$`)

// StaffAccount is a member of the tax office's staff who signs in to the console. Tenant
// is empty for the tax office (every tenant's cases) or names the one tenant whose cases
// the account works on.
type StaffAccount struct {
	Login  string `json:"login"`
	Role   string `json:"role"`
	Tenant string `json:"tenant,omitempty"`
	// Person is the member of staff: their console account and API keys are one staff
	// identity (StaffIdentity).
	Person       string `json:"person,omitempty"`
	PasswordHash string `json:"password_hash"`
	Disabled     bool   `json:"disabled,omitempty"`
	CreatedAt    int64  `json:"created_at"`
}

// Principal is who the account acts as: its id is in every journal entry it causes. A
// console account is the tax office's, bound to its tenant when it names one.
func (a StaffAccount) Principal() Principal {
	// An account stored before persons existed is its login's person, as `staff create`
	// defaults it: otherwise its console decisions and the same inspector's key (person
	// = login) would count as two people for separation of duties.
	person := a.Person
	if person == "" {
		person = a.Login
	}
	return Principal{ID: "staff:" + a.Login, Tenant: TaxOffice, BoundTo: a.Tenant, Person: person, Role: a.Role, Scopes: RoleScopes[a.Role]}
}

// attempts counts the sign-in attempts of one login from one client address (an item of
// the accounts table under a key no login can have). Failures: attempts since the last
// success; Locks: how many times this login and address were locked since then.
type attempts struct {
	Key         string `json:"login"`
	Failures    int    `json:"failures"`
	Locks       int    `json:"locks"`
	LockedUntil int64  `json:"locked_until"`
}

// Session is one signed-in browser. Only the SHA-256 of its cookie value is stored.
type Session struct {
	IDHash    string `json:"session_hash"`
	Login     string `json:"login"`
	Role      string `json:"role"`
	Tenant    string `json:"tenant,omitempty"`
	Person    string `json:"person,omitempty"`
	CSRF      string `json:"csrf"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt int64  `json:"expires_at"` // Unix seconds; also the table's TTL attribute
}

// Account is the staff account the session acts for.
func (s Session) Account() StaffAccount {
	return StaffAccount{Login: s.Login, Role: s.Role, Tenant: s.Tenant, Person: s.Person}
}

// StaffStore keeps staff accounts and sessions in DynamoDB.
type StaffStore struct {
	DB       store.DB
	Accounts string
	Sessions string
	Now      func() time.Time // nil: time.Now
	// Cost of bcrypt; 0 is bcrypt.DefaultCost (tests use bcrypt.MinCost).
	Cost int
}

func (st StaffStore) now() time.Time {
	if st.Now != nil {
		return st.Now()
	}
	return time.Now()
}

func isStaffRole(role string) bool {
	return Principal{Role: role}.Staff()
}

// NewPassword makes a random password of 20 URL-safe characters (120 bits).
func NewPassword() (string, error) {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create stores a new staff account with the password hashed by bcrypt. It refuses an
// existing login: a password is never overwritten by accident.
func (st StaffStore) Create(ctx context.Context, login, role, tenant, password string) (StaffAccount, error) {
	return st.CreatePerson(ctx, login, role, tenant, "", password)
}

// personRE is what a person id may be: the same alphabet as a login.
var personRE = loginRE

// CreatePerson is Create for a named person (StaffIdentity): the keys made with
// --person of the same id are the same member of staff.
func (st StaffStore) CreatePerson(ctx context.Context, login, role, tenant, person, password string) (StaffAccount, error) {
	if !loginRE.MatchString(login) {
		return StaffAccount{}, fmt.Errorf("name %q: want 2-63 lower-case letters, digits, '.', '_' and '-'", login)
	}
	if !isStaffRole(role) {
		return StaffAccount{}, fmt.Errorf("role %q: want reviewer, inspector, specialist or operator", role)
	}
	if tenant != "" && !tenantRE.MatchString(tenant) {
		return StaffAccount{}, fmt.Errorf("tenant %q: want 2-63 lower-case letters, digits and '-'", tenant)
	}
	if person != "" && !personRE.MatchString(person) {
		return StaffAccount{}, fmt.Errorf("person %q: want 2-63 lower-case letters, digits, '.', '_' and '-'", person)
	}
	if len([]rune(password)) < MinPasswordChars || len(password) > 72 {
		return StaffAccount{}, fmt.Errorf("password: want %d to 72 bytes", MinPasswordChars)
	}
	cost := st.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return StaffAccount{}, fmt.Errorf("hash password: %w", err)
	}
	a := StaffAccount{Login: login, Role: role, Tenant: tenant, Person: person, PasswordHash: string(hash), CreatedAt: st.now().Unix()}
	created, err := store.PutNew(ctx, st.DB, st.Accounts, "login", a)
	if err != nil {
		return StaffAccount{}, fmt.Errorf("store staff account: %w", err)
	}
	if !created {
		return StaffAccount{}, fmt.Errorf("staff account %q: %w", login, ErrStaffExists)
	}
	return a, nil
}

// dummyHash is compared against when the login is unknown, so that an unknown login
// takes as long as a wrong password and does not reveal which logins exist.
// It is made on first use: every binary that imports the API need not pay for it.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("taxflow-no-such-account"), bcrypt.DefaultCost)
	return h
})

// SignIn is SignInFrom for a caller whose address is unknown (one shared count).
func (st StaffStore) SignIn(ctx context.Context, login, password string) (cookie string, s Session, err error) {
	return st.SignInFrom(ctx, login, password, "")
}

// SignInFrom checks a password and opens a session. It costs the same store round trips
// and the same password hash for an unknown login, a disabled account and a wrong
// password (two reads, one counted attempt, one bcrypt comparison, one write), so its
// answer and its timing tell nothing about which logins exist. MaxPasswordFailures
// attempts without a success from one client address lock that login for that address
// (StaffLockout, doubling per lock up to MaxStaffLockout); while locked even the right
// password is refused from there. Another address is not locked: an outsider who knows a
// login cannot keep its owner out. It returns the session's cookie value.
func (st StaffStore) SignInFrom(ctx context.Context, login, password, client string) (cookie string, s Session, err error) {
	var a StaffAccount
	key := login
	if !loginRE.MatchString(login) {
		key = "~invalid" // read an item as for any login: the same round trip
	}
	found, err := store.Get(ctx, st.DB, st.Accounts, st.key(key), &a)
	if err != nil {
		return "", Session{}, fmt.Errorf("read staff account: %w", err)
	}
	found = found && a.Login == login && a.PasswordHash != ""
	now := st.now()
	// The attempt is counted before the password is checked, under the condition that
	// fewer than MaxPasswordFailures are counted and no lock holds: however many guesses
	// arrive at once, at most that many are checked per window. Unknown logins count too.
	akey := attemptsKey(login, client)
	if err := st.reserveAttempt(ctx, akey, now); err != nil {
		if errors.Is(err, ErrStaffLocked) {
			_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		}
		return "", Session{}, err
	}
	hash := dummyHash()
	if found {
		hash = []byte(a.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !found || a.Disabled {
		var counted attempts
		if _, err := store.Get(ctx, st.DB, st.Accounts, st.key(akey), &counted); err != nil {
			return "", Session{}, fmt.Errorf("read wrong passwords: %w", err)
		}
		if counted.Failures < MaxPasswordFailures {
			// A write as the lock below does, so the answer's timing says nothing.
			if _, err := store.SetFields(ctx, st.DB, st.Accounts, st.key(akey), map[string]any{"last_failure": now.Unix()}); err != nil {
				return "", Session{}, fmt.Errorf("note a wrong password: %w", err)
			}
			return "", Session{}, ErrBadCredentials
		}
		// The count stays: until the lock ends, no attempt is reserved.
		if err := st.lock(ctx, akey, counted, now); err != nil {
			return "", Session{}, err
		}
		return "", Session{}, ErrStaffLocked
	}
	if _, err := store.SetFields(ctx, st.DB, st.Accounts, st.key(akey), map[string]any{"failures": 0, "locks": 0, "locked_until": 0}); err != nil {
		return "", Session{}, fmt.Errorf("reset wrong passwords: %w", err)
	}
	cookie, err = randomToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	s = Session{IDHash: HashKey(cookie), Login: a.Login, Role: a.Role, Tenant: a.Tenant, Person: a.Person, CSRF: csrf,
		CreatedAt: now.Unix(), ExpiresAt: now.Add(SessionTTL).Unix()}
	if _, err := store.PutNew(ctx, st.DB, st.Sessions, "session_hash", s); err != nil {
		return "", Session{}, fmt.Errorf("store session: %w", err)
	}
	return cookie, s, nil
}

// attemptsKey is the key of the attempts of a login from a client address: a hash, so
// neither the address nor an unknown login is stored as it is. '#' is in no login.
func attemptsKey(login, client string) string {
	sum := sha256.Sum256([]byte(login + "\x00" + client))
	return "attempts#" + hex.EncodeToString(sum[:16])
}

// lockFor is how long the n-th lock (0 first) of a login and address lasts.
func lockFor(n int) time.Duration {
	d := StaffLockout
	for range min(max(n, 0), 16) {
		d *= 2
		if d >= MaxStaffLockout {
			return MaxStaffLockout
		}
	}
	return d
}

// lock closes sign-in for a login and address for its next lock's time.
// A caller that read a lock in force sets none: attempts racing to lock count once.
func (st StaffStore) lock(ctx context.Context, akey string, cur attempts, now time.Time) error {
	if cur.LockedUntil > now.Unix() {
		return nil
	}
	if _, err := store.SetFields(ctx, st.DB, st.Accounts, st.key(akey),
		map[string]any{"locked_until": now.Add(lockFor(cur.Locks)).Unix(), "locks": cur.Locks + 1}); err != nil {
		return fmt.Errorf("lock the sign-in: %w", err)
	}
	return nil
}

// reserveAttempt counts a sign-in attempt if the login and address take one: fewer than
// MaxPasswordFailures counted and no lock in force. A lock that has ended starts a new
// window (the count is reset, once, by whoever reads the ended lock first).
func (st StaffStore) reserveAttempt(ctx context.Context, akey string, now time.Time) error {
	names := map[string]string{"#f": "failures", "#l": "locked_until"}
	values := map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"},
		":max": &types.AttributeValueMemberN{Value: strconv.Itoa(MaxPasswordFailures)},
		":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}}
	_, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(st.Accounts), Key: st.key(akey),
		UpdateExpression:          aws.String("ADD #f :one"),
		ConditionExpression:       aws.String("(attribute_not_exists(#f) OR #f < :max) AND (attribute_not_exists(#l) OR #l <= :now)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values})
	if err == nil {
		return nil
	}
	if !store.IsConditionFailed(err) {
		return fmt.Errorf("count a sign-in attempt: %w", err)
	}
	var cur attempts
	if _, err := store.Get(ctx, st.DB, st.Accounts, st.key(akey), &cur); err != nil {
		return fmt.Errorf("read the sign-in lock: %w", err)
	}
	if cur.LockedUntil > now.Unix() {
		return ErrStaffLocked
	}
	if cur.LockedUntil == 0 {
		// Every attempt of the window is taken (in flight, or lost with a process that
		// died before judging it): lock now, so that the window ends for certain.
		if err := st.lock(ctx, akey, cur, now); err != nil {
			return err
		}
		return ErrStaffLocked
	}
	// The lock has ended: this attempt is the first of a new window, if no other
	// attempt started that window first.
	_, err = st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(st.Accounts), Key: st.key(akey),
		UpdateExpression:         aws.String("SET #f = :one, #l = :zero"),
		ConditionExpression:      aws.String("#l = :old"),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": values[":one"], ":zero": &types.AttributeValueMemberN{Value: "0"},
			":old": &types.AttributeValueMemberN{Value: strconv.FormatInt(cur.LockedUntil, 10)}}})
	if store.IsConditionFailed(err) {
		return st.reserveAttempt(ctx, akey, now)
	}
	if err != nil {
		return fmt.Errorf("start a new window of attempts: %w", err)
	}
	return nil
}

// Disable closes a staff account: no sign-in from now on, and every session it has is
// ended. It reports ErrNoStaff for an unknown login.
func (st StaffStore) Disable(ctx context.Context, login string) (sessions int, err error) {
	found, err := store.SetFields(ctx, st.DB, st.Accounts, st.key(login), map[string]any{"disabled": true})
	if err != nil {
		return 0, fmt.Errorf("disable staff account: %w", err)
	}
	if !found || !loginRE.MatchString(login) {
		return 0, ErrNoStaff
	}
	return st.RevokeSessions(ctx, login)
}

// RevokeSessions ends every live session of a login at once (a scan of the sessions
// table: an operator's command, not a request path).
func (st StaffStore) RevokeSessions(ctx context.Context, login string) (int, error) {
	var start map[string]types.AttributeValue
	n := 0
	now := st.now().Unix()
	for {
		page, err := st.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(st.Sessions), ExclusiveStartKey: start})
		if err != nil {
			return n, fmt.Errorf("scan %s: %w", st.Sessions, err)
		}
		var sessions []Session
		if err := store.UnmarshalList(page.Items, &sessions); err != nil {
			return n, err
		}
		for _, s := range sessions {
			if s.Login != login || s.ExpiresAt <= now {
				continue
			}
			if _, err := store.SetFields(ctx, st.DB, st.Sessions, map[string]types.AttributeValue{"session_hash": store.S(s.IDHash)},
				map[string]any{"expires_at": now}); err != nil {
				return n, fmt.Errorf("end session: %w", err)
			}
			n++
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return n, nil
		}
	}
}

// Session finds the live session of a cookie value; an expired or signed-out one is not
// found (DynamoDB's TTL removes it later, so the expiry is checked here).
func (st StaffStore) Session(ctx context.Context, cookie string) (Session, bool, error) {
	if cookie == "" || len(cookie) > 100 {
		return Session{}, false, nil
	}
	var s Session
	found, err := store.Get(ctx, st.DB, st.Sessions, map[string]types.AttributeValue{"session_hash": store.S(HashKey(cookie))}, &s)
	if err != nil {
		return Session{}, false, fmt.Errorf("read session: %w", err)
	}
	if !found || s.ExpiresAt <= st.now().Unix() {
		return Session{}, false, nil
	}
	// The account is read again on every request: a sign-in in flight while `staff
	// disable` ran writes its session after the disable's scan, and a disabled (or
	// removed) account must not act through it. One read per console request.
	var a StaffAccount
	found, err = store.Get(ctx, st.DB, st.Accounts, st.key(s.Login), &a)
	if err != nil {
		return Session{}, false, fmt.Errorf("read the session's account: %w", err)
	}
	if !found || a.Disabled {
		return Session{}, false, nil
	}
	return s, true, nil
}

// SignOut ends a session at once.
func (st StaffStore) SignOut(ctx context.Context, cookie string) error {
	if cookie == "" || len(cookie) > 100 {
		return nil
	}
	_, err := store.SetFields(ctx, st.DB, st.Sessions, map[string]types.AttributeValue{"session_hash": store.S(HashKey(cookie))},
		map[string]any{"expires_at": st.now().Unix()})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

func (st StaffStore) key(login string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"login": store.S(login)}
}

// ValidCSRF compares a form's token with the session's in constant time.
func (s Session) ValidCSRF(token string) bool {
	return s.CSRF != "" && subtle.ConstantTimeCompare([]byte(s.CSRF), []byte(token)) == 1
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
