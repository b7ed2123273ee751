// Package ledgertest drives the refund ledger and the payout function with random
// interleavings of claims, approvals, rejections, withdrawals, payouts, payout failures
// (the treasury down, an answer lost after the money left), retries, cancellations,
// changes of requisites, worker restarts, ledger changes and the expire sweep, and
// checks the invariants after every step:
//
//   - reserved + paid ≤ refundable for every balance, and reserved + paid ≤ what the
//     charges and payments ledger makes refundable;
//   - the balance's reserved and paid are the sums of its reservations;
//   - no payout key transfers twice (its transfer id never changes) and no case has more
//     than one transfer; a posted reservation has exactly the one transfer it names, for
//     its amount.
//
// Every run is reproducible from its seed (the sequence of operations and faults; the
// bursts of concurrent claims race, but the invariants hold whichever way). The same
// driver runs against the in-memory store (unit tests, many seeds) and against DynamoDB
// Local (integration).
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Tables names the tables the driver uses.
type Tables struct {
	Reservations, Treasury, Entries, Taxpayers string
}

// Config is one run.
type Config struct {
	DB     store.DB
	Tables Tables
	Seed   uint64
	Steps  int
	// Nonce keeps the taxpayers of runs that share a store apart; it does not change
	// the sequence of operations.
	Nonce string
}

// Stats are what a run did.
type Stats struct {
	Steps, Cases, Reserved, Refused, Capped, Paid, Voided, Faults, Restarts, Bursts, Expired int
	PaidKopecks                                                                              int64
}

type balance struct {
	inn    string
	period int
	// truth is the refundable overpayment the charges and payments ledger gives.
	truth   int64
	entries int
}

type attempt struct {
	in        contract.PayoutInput
	transfer  string // the transfer id the key answered, once it did
	cancelled bool
}

type mcase struct {
	key       string
	bal       *balance
	requested int64
	amount    int64
	state     string // "", reserved, refused, posted, voided
	attempts  []*attempt
	abandoned bool // its case ended without settling: only the expire sweep may void it
	expires   time.Time
}

func (c *mcase) current() *attempt {
	if n := len(c.attempts); n > 0 && !c.attempts[n-1].cancelled {
		return c.attempts[n-1]
	}
	return nil
}

type faults struct {
	mu   sync.Mutex
	mode string // "", "down" (before the transfer), "lost" (after it)
}

type faultyTreasury struct {
	payout.Treasury
	f *faults
}

func (t faultyTreasury) Transfer(ctx context.Context, tr payout.Transfer) (payout.Receipt, error) {
	t.f.mu.Lock()
	mode := t.f.mode
	t.f.mode = ""
	t.f.mu.Unlock()
	if mode == "down" {
		return payout.Receipt{}, errors.New("treasury gateway timeout")
	}
	r, err := t.Treasury.Transfer(ctx, tr)
	if err == nil && mode == "lost" {
		return payout.Receipt{}, errors.New("connection reset after the transfer")
	}
	return r, err
}

type run struct {
	t       testing.TB
	cfg     Config
	rng     *rand.Rand
	ctx     context.Context
	ledger  ledger.Ledger
	payout  payout.Handler
	faults  *faults
	bals    []*balance
	cases   []*mcase
	pending map[string]bool // inn → a change of requisites is pending
	now     time.Time
	stats   Stats
	log     []string
}

var bank = contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}

// Run drives one seed and fails t (with the seed and the last operations) on the first
// broken invariant.
func Run(t testing.TB, cfg Config) Stats {
	t.Helper()
	r := &run{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), ctx: context.Background(),
		faults: &faults{}, pending: map[string]bool{}, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return r.now }
	r.ledger = ledger.Ledger{DB: cfg.DB, Table: cfg.Tables.Reservations, Entries: cfg.Tables.Entries, Now: clock}
	tr := payout.DynamoTreasury{DB: cfg.DB, Table: cfg.Tables.Treasury, Now: clock}
	r.payout = payout.Handler{DB: cfg.DB, Taxpayers: cfg.Tables.Taxpayers, Treasury: faultyTreasury{tr, r.faults}, Ledger: r.ledger}
	r.setup()
	for step := 0; step < cfg.Steps; step++ {
		r.stats.Steps++
		r.now = r.now.Add(time.Hour)
		touched := r.step()
		if step%25 == 24 {
			touched = r.bals
		}
		r.check(touched)
	}
	r.settle()
	r.check(r.bals)
	r.checkSettled()
	if debugLog {
		t.Log(joinLines(r.log))
	}
	return r.stats
}

func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	last := r.log
	if len(last) > 12 {
		last = last[len(last)-12:]
	}
	r.t.Fatalf("seed %d (rerun with this seed): %s\nlast operations:\n  %s", r.cfg.Seed, fmt.Sprintf(format, args...), joinLines(last))
}

func joinLines(l []string) string {
	out := ""
	for i, s := range l {
		if i > 0 {
			out += "\n  "
		}
		out += s
	}
	return out
}

func (r *run) note(format string, args ...any) { r.log = append(r.log, fmt.Sprintf(format, args...)) }

// inn derives a valid 12-digit INN from the nonce, the seed and an index.
func (r *run) inn(i int) string {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%s/%d/%d", r.cfg.Nonce, r.cfg.Seed, i) // a hash.Hash never fails a write
	return domain.CompleteINN12(fmt.Sprintf("78%08d", h.Sum64()%100_000_000))
}

func (r *run) setup() {
	// One period per taxpayer: overpayment.Balance offsets the charges of every period
	// against one period's payments (tracked by another issue), which would leave a
	// second period of the same taxpayer with nothing refundable.
	for i, period := range []int{2024, 2025, 2025, 2023} {
		inn := r.inn(i)
		tp := contract.Taxpayer{INN: inn, AccountState: "active", Confirmed: true, INNLinked: true, Bank: &bank}
		if _, err := store.PutNew(r.ctx, r.cfg.DB, r.cfg.Tables.Taxpayers, "inn", tp); err != nil {
			r.fail("register taxpayer: %v", err)
		}
		b := &balance{inn: inn, period: period}
		r.bals = append(r.bals, b)
		charge := 1_000_000 + r.rng.Int64N(5_000_000)
		r.addEntry(b, "charge", charge)
		r.addEntry(b, "payment", charge+100_000+r.rng.Int64N(2_000_000))
	}
	// What the ledger computation gives is the truth the balances are checked against.
	for _, b := range r.bals {
		got, err := r.ledger.Refundable(r.ctx, b.inn, b.period)
		if err != nil {
			r.fail("refundable: %v", err)
		}
		b.truth = got
	}
}

// addEntry adds a charge or a payment to the charges and payments ledger.
func (r *run) addEntry(b *balance, kind string, amount int64) {
	b.entries++
	e := contract.LedgerEntry{INN: b.inn, EntryID: fmt.Sprintf("%d#ndfl#%d", b.period, b.entries), Kind: kind, Tax: "ndfl", Period: b.period, Amount: amount}
	if _, err := store.PutNew(r.ctx, r.cfg.DB, r.cfg.Tables.Entries, "entry_id", e); err != nil {
		r.fail("ledger entry: %v", err)
	}
}

// step runs one random operation and returns the balances it touched.
func (r *run) step() []*balance {
	x := r.rng.IntN(100)
	switch {
	case x < 22:
		return r.claim(r.bals[r.rng.IntN(len(r.bals))], r.rng.IntN(10) == 0)
	case x < 27:
		return r.retryClaim()
	case x < 37:
		return r.voidOne()
	case x < 57:
		return r.pay()
	case x < 67:
		return r.retry()
	case x < 74:
		return r.cancel()
	case x < 79:
		return r.toggleRequisites()
	case x < 84:
		return r.restart()
	case x < 92:
		return r.newPayment()
	case x < 95:
		return r.expire()
	case x < 97:
		return r.zombie()
	default:
		return r.burst()
	}
}

func (r *run) pick(ok func(*mcase) bool) *mcase {
	var cands []*mcase
	for _, c := range r.cases {
		if ok(c) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[r.rng.IntN(len(cands))]
}

func (r *run) reserveIn(c *mcase) contract.LedgerInput {
	return contract.LedgerInput{Op: contract.LedgerReserve, Key: c.key, CaseID: c.key, INN: c.bal.inn, Period: c.bal.period,
		Amount: c.requested, ExpiresAt: c.expires}
}

func (r *run) newCase(b *balance, abandoned bool) *mcase {
	c := &mcase{key: fmt.Sprintf("refund-%s-%d-%d", r.cfg.Nonce, r.cfg.Seed, len(r.cases)), bal: b,
		requested: 1 + r.rng.Int64N(max(b.truth*3/10, 1)), abandoned: abandoned, expires: r.now.AddDate(100, 0, 0)}
	if abandoned {
		c.expires = r.now.Add(time.Duration(1+r.rng.IntN(48)) * time.Hour)
	}
	r.cases = append(r.cases, c)
	r.stats.Cases++
	return c
}

func (r *run) applyReserve(c *mcase, res contract.LedgerResult) {
	switch res.State {
	case contract.ReservationReserved:
		if res.Amount <= 0 || res.Amount > c.requested {
			r.fail("%s reserved %d of %d", c.key, res.Amount, c.requested)
		}
		if res.Capped != (res.Amount < c.requested) {
			r.fail("%s: capped %v for %d of %d", c.key, res.Capped, res.Amount, c.requested)
		}
		c.state, c.amount = contract.ReservationReserved, res.Amount
		r.stats.Reserved++
		if res.Capped {
			r.stats.Capped++
		}
	case contract.ReservationRefused:
		if res.Amount != 0 || res.Reason == "" {
			r.fail("%s refused with %+v", c.key, res)
		}
		c.state = contract.ReservationRefused
		r.stats.Refused++
	default:
		r.fail("%s: reserve answered %+v", c.key, res)
	}
}

func (r *run) claim(b *balance, abandoned bool) []*balance {
	c := r.newCase(b, abandoned)
	res, err := r.ledger.Reserve(r.ctx, r.reserveIn(c))
	r.note("claim %s %d on %s/%d → %s %d %v", c.key, c.requested, b.inn[:4], b.period, res.State, res.Amount, err)
	if err != nil {
		r.fail("reserve %s: %v", c.key, err)
	}
	r.applyReserve(c, res)
	return []*balance{b}
}

// retryClaim sends a claim again (a retried activity): it answers what it did before.
func (r *run) retryClaim() []*balance {
	c := r.pick(func(c *mcase) bool { return c.state != "" })
	if c == nil {
		return nil
	}
	res, err := r.ledger.Reserve(r.ctx, r.reserveIn(c))
	r.note("retry claim %s → %s %d %v", c.key, res.State, res.Amount, err)
	if err != nil {
		r.fail("retried reserve %s: %v", c.key, err)
	}
	switch c.state {
	case contract.ReservationRefused:
		// a refused claim stored nothing: asked again, it may now get what was freed
		if res.State == contract.ReservationReserved {
			c.state = ""
			r.applyReserve(c, res)
		}
	default:
		if !res.Duplicate || res.Amount != c.amount || res.State != c.state {
			r.fail("retried reserve of %s (%s %d) answered %+v", c.key, c.state, c.amount, res)
		}
	}
	return []*balance{c.bal}
}

// voidOne is a rejection or a withdrawal after approval.
func (r *run) voidOne() []*balance {
	c := r.pick(func(c *mcase) bool { return c.state == contract.ReservationReserved && !c.abandoned })
	if c == nil {
		return nil
	}
	res, err := r.ledger.Void(r.ctx, c.key, "withdrawn")
	r.note("void %s (attempt %v) → %s %v", c.key, c.current() != nil, res.State, err)
	if c.current() != nil || c.hasClaim() {
		// a payout key is (or may be) claimed: only its cancellation may release it
		var fe *fnerr.Error
		if err == nil && res.State == contract.ReservationVoided {
			if c.hasTransferred(r) {
				r.fail("voided %s although money left under its key", c.key)
			}
			c.state = contract.ReservationVoided
			r.stats.Voided++
			return []*balance{c.bal}
		}
		if !errors.As(err, &fe) || fe.Type != fnerr.TypeConflict {
			r.fail("void of %s with a payout in flight: %+v %v", c.key, res, err)
		}
		return []*balance{c.bal}
	}
	if err != nil || res.State != contract.ReservationVoided {
		r.fail("void %s: %+v %v", c.key, res, err)
	}
	c.state = contract.ReservationVoided
	r.stats.Voided++
	return []*balance{c.bal}
}

// hasClaim tells whether an earlier key of the case may still hold the reservation's claim.
func (c *mcase) hasClaim() bool {
	for _, a := range c.attempts {
		if !a.cancelled {
			return true
		}
	}
	return false
}

func (c *mcase) hasTransferred(r *run) bool {
	for _, a := range c.attempts {
		if rec := r.treasury(a.in.PayoutKey); rec.PayoutKey != "" && rec.Transferred() {
			return true
		}
	}
	return false
}

func (r *run) pay() []*balance {
	c := r.pick(func(c *mcase) bool { return c.state == contract.ReservationReserved && !c.abandoned })
	if c == nil {
		return nil
	}
	a := c.current()
	if a == nil {
		n := len(c.attempts) + 1
		// content fixed now: principal, interest, payee
		a = &attempt{in: contract.PayoutInput{PayoutKey: fmt.Sprintf("%s/payout/%d", c.key, n), CaseID: c.key, INN: c.bal.inn,
			Principal: c.amount, Interest: r.rng.Int64N(5_000), Payee: taxpayer.PayeeRef(bank), Reservation: c.key}}
		a.in.Amount = a.in.Principal + a.in.Interest
		c.attempts = append(c.attempts, a)
	}
	return r.send(c, a)
}

// send makes one payout call, with a fault now and then.
func (r *run) send(c *mcase, a *attempt) []*balance {
	mode := ""
	switch r.rng.IntN(10) {
	case 0:
		mode = "down"
	case 1:
		mode = "lost"
	}
	if mode != "" {
		r.stats.Faults++
	}
	r.faults.mu.Lock()
	r.faults.mode = mode
	r.faults.mu.Unlock()
	res, err := r.payout.Pay(r.ctx, a.in)
	r.faults.mu.Lock()
	r.faults.mode = ""
	r.faults.mu.Unlock()
	r.note("pay %s fault %q → %s %v", a.in.PayoutKey, mode, res.TransferID, err)
	var fe *fnerr.Error
	switch {
	case err == nil:
		r.receipt(a, res.TransferID)
		r.posted(c)
	case errors.As(err, &fe) && fe.Type == fnerr.TypeRequisitesChanged:
		if !r.pending[c.bal.inn] {
			r.fail("%s: RequisitesChanged without a pending change", a.in.PayoutKey)
		}
		return r.cancelCase(c, false)
	case errors.As(err, &fe):
		// Conflict: another key of the case holds the claim (a restart left it); cancel it.
		if fe.Type != fnerr.TypeConflict {
			r.fail("%s: %v", a.in.PayoutKey, err)
		}
	}
	return []*balance{c.bal}
}

func (r *run) receipt(a *attempt, id string) {
	if a.transfer != "" && a.transfer != id {
		r.fail("payout key %s answered transfer %s, then %s", a.in.PayoutKey, a.transfer, id)
	}
	a.transfer = id
}

func (r *run) posted(c *mcase) {
	if c.state != contract.ReservationPosted {
		c.state = contract.ReservationPosted
		r.stats.Paid++
		r.stats.PaidKopecks += c.amount
	}
}

// retry sends the current key again, with the same content.
func (r *run) retry() []*balance {
	c := r.pick(func(c *mcase) bool { return c.current() != nil && c.state != contract.ReservationVoided })
	if c == nil {
		return nil
	}
	return r.send(c, c.current())
}

func (r *run) cancel() []*balance {
	c := r.pick(func(c *mcase) bool { return c.current() != nil && c.state == contract.ReservationReserved })
	if c == nil {
		return nil
	}
	return r.cancelCase(c, r.rng.IntN(3) == 0)
}

// cancelCase fences the case's current key (and the ones before it); with void, the
// reservation is released if no money left.
func (r *run) cancelCase(c *mcase, void bool) []*balance {
	for _, a := range c.attempts {
		if a.cancelled {
			continue
		}
		in := a.in
		in.Op, in.Void, in.VoidReason = contract.PayoutCancel, void, "final failure"
		res, err := r.payout.Cancel(r.ctx, in)
		r.note("cancel %s void %v → transferred %v voided %v %v", a.in.PayoutKey, void, res.Transferred, res.Voided, err)
		if err != nil {
			r.fail("cancel %s: %v", a.in.PayoutKey, err)
		}
		if res.Transferred {
			r.receipt(a, res.TransferID)
			r.posted(c)
			return []*balance{c.bal}
		}
		a.cancelled = true
		if res.Voided {
			c.state = contract.ReservationVoided
			r.stats.Voided++
			return []*balance{c.bal}
		}
	}
	return []*balance{c.bal}
}

// zombie is a payout call of a cancelled key that lands late (an activity attempt that
// outlived its timeout): the fence must refuse it, whatever the case's state.
func (r *run) zombie() []*balance {
	var cands []*attempt
	var owner []*mcase
	for _, c := range r.cases {
		for _, a := range c.attempts {
			if a.cancelled {
				cands, owner = append(cands, a), append(owner, c)
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	i := r.rng.IntN(len(cands))
	res, err := r.payout.Pay(r.ctx, cands[i].in)
	r.note("zombie %s → %s %v", cands[i].in.PayoutKey, res.TransferID, err)
	var fe *fnerr.Error
	if err == nil || !errors.As(err, &fe) {
		r.fail("a late call under the cancelled key %s answered %+v %v", cands[i].in.PayoutKey, res, err)
	}
	return []*balance{owner[i].bal}
}

func (r *run) toggleRequisites() []*balance {
	inn := r.bals[r.rng.IntN(len(r.bals))].inn
	r.setRequisites(inn, !r.pending[inn])
	r.note("requisites of %s pending=%v", inn[:4], r.pending[inn])
	return nil
}

// setRequisites writes the registry: verified requisites, and a pending change or none.
func (r *run) setRequisites(inn string, pending bool) {
	r.pending[inn] = pending
	tp := contract.Taxpayer{INN: inn, AccountState: "active", Confirmed: true, INNLinked: true, Bank: &bank}
	if pending {
		tp.PendingBank = &contract.BankRequisites{BIK: bank.BIK, Account: "40817810000000012345"}
	}
	item, err := store.Marshal(tp)
	if err != nil {
		r.fail("%v", err)
	}
	if _, err := r.cfg.DB.PutItem(r.ctx, &dynamodb.PutItemInput{TableName: aws.String(r.cfg.Tables.Taxpayers), Item: item}); err != nil {
		r.fail("registry: %v", err)
	}
}

// restart is a worker that died: every activity in flight runs again, with the same input.
func (r *run) restart() []*balance {
	r.stats.Restarts++
	var touched []*balance
	for _, c := range r.cases {
		if a := c.current(); a != nil && c.state == contract.ReservationReserved && !r.pending[c.bal.inn] {
			touched = append(touched, r.send(c, a)...)
		}
	}
	r.note("restart")
	return touched
}

func (r *run) newPayment() []*balance {
	b := r.bals[r.rng.IntN(len(r.bals))]
	r.addEntry(b, "payment", 1+r.rng.Int64N(max(b.truth/2, 1)))
	got, err := r.ledger.Refundable(r.ctx, b.inn, b.period)
	if err != nil {
		r.fail("%v", err)
	}
	b.truth = got
	r.note("payment on %s/%d: refundable %d", b.inn[:4], b.period, got)
	return []*balance{b}
}

// expire runs the sweep a day later: it voids the abandoned reservations that expired
// with no payout in flight, and nothing else.
func (r *run) expire() []*balance {
	r.now = r.now.Add(24 * time.Hour)
	cursor := ""
	for {
		res, err := r.ledger.Expire(r.ctx, contract.LedgerInput{Op: contract.LedgerExpire, Now: r.now, Cursor: cursor, Limit: 1000})
		if err != nil {
			r.fail("expire: %v", err)
		}
		if cursor = res.Cursor; cursor == "" {
			break
		}
	}
	for _, c := range r.cases {
		res, _, found, err := r.ledger.Get(r.ctx, c.key)
		if err != nil {
			r.fail("%v", err)
		}
		if !found || c.state != contract.ReservationReserved {
			continue
		}
		expired := c.abandoned && !c.expires.After(r.now)
		switch {
		case expired && res.State != contract.ReservationVoided:
			r.fail("%s expired at %v and is still %s", c.key, c.expires, res.State)
		case !expired && res.State == contract.ReservationVoided:
			r.fail("%s was voided by the sweep before it expired", c.key)
		case expired:
			c.state = contract.ReservationVoided
			r.stats.Expired++
		}
	}
	r.note("expire at %v", r.now)
	return r.bals
}

// burst sends several claims on one balance at once.
func (r *run) burst() []*balance {
	r.stats.Bursts++
	b := r.bals[r.rng.IntN(len(r.bals))]
	cs := []*mcase{r.newCase(b, false), r.newCase(b, false), r.newCase(b, false), r.newCase(b, false)}
	results := make([]contract.LedgerResult, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.ledger.Reserve(r.ctx, r.reserveIn(c))
		}()
	}
	wg.Wait()
	for i, c := range cs {
		r.note("burst claim %s %d → %s %d %v", c.key, c.requested, results[i].State, results[i].Amount, errs[i])
		if errs[i] != nil {
			r.fail("burst reserve %s: %v", c.key, errs[i])
		}
		r.applyReserve(c, results[i])
	}
	return []*balance{b}
}

func (r *run) treasury(key string) payout.Record {
	var rec payout.Record
	if _, err := store.Get(r.ctx, r.cfg.DB, r.cfg.Tables.Treasury, map[string]types.AttributeValue{"payout_key": store.S(key)}, &rec); err != nil {
		r.fail("treasury: %v", err)
	}
	return rec
}

// check reads the store and holds it to the invariants, for the given balances.
func (r *run) check(bals []*balance) {
	seen := map[*balance]bool{}
	for _, b := range bals {
		if b == nil || seen[b] {
			continue
		}
		seen[b] = true
		var bal ledger.Balance
		found, err := store.Get(r.ctx, r.cfg.DB, r.cfg.Tables.Reservations, map[string]types.AttributeValue{"key": store.S(ledger.BalanceKey(b.inn, b.period))}, &bal)
		if err != nil {
			r.fail("read balance: %v", err)
		}
		if !found {
			continue
		}
		if bal.Reserved < 0 || bal.Paid < 0 || bal.Reserved+bal.Paid > bal.Refundable {
			r.fail("balance %s/%d breaks reserved + paid ≤ refundable: %+v", b.inn[:4], b.period, bal)
		}
		if bal.Reserved+bal.Paid > b.truth {
			r.fail("balance %s/%d holds %d, the ledger makes %d refundable", b.inn[:4], b.period, bal.Reserved+bal.Paid, b.truth)
		}
		var reserved, posted, transferred int64
		for _, c := range r.cases {
			if c.bal != b {
				continue
			}
			res, _, found, err := r.ledger.Get(r.ctx, c.key)
			if err != nil {
				r.fail("read reservation: %v", err)
			}
			transfers := 0
			var principal int64
			var keys []string
			for _, a := range c.attempts {
				rec := r.treasury(a.in.PayoutKey)
				if rec.PayoutKey == "" || !rec.Transferred() {
					continue
				}
				if a.transfer != "" && rec.TransferID != a.transfer {
					r.fail("payout key %s: transfer %s, the treasury says %s", a.in.PayoutKey, a.transfer, rec.TransferID)
				}
				transfers++
				principal += rec.Principal
				keys = append(keys, rec.PayoutKey)
			}
			if transfers > 1 {
				sort.Strings(keys)
				r.fail("case %s was paid %d times: %v", c.key, transfers, keys)
			}
			if !found {
				if c.state == contract.ReservationReserved || transfers > 0 {
					r.fail("case %s (%s) has no reservation but %d transfers", c.key, c.state, transfers)
				}
				continue
			}
			switch res.State {
			case contract.ReservationReserved:
				reserved += res.Amount
				if transfers == 1 && res.PayoutKey != keys[0] {
					r.fail("case %s: money left under %s, the reservation names %q", c.key, keys[0], res.PayoutKey)
				}
			case contract.ReservationPosted:
				posted += res.Amount
				if transfers != 1 || principal != res.Amount || keys[0] != res.PayoutKey {
					r.fail("case %s posted %d under %s; the treasury holds %d transfers of %d (%v)", c.key, res.Amount, res.PayoutKey, transfers, principal, keys)
				}
			case contract.ReservationVoided:
				if transfers != 0 {
					r.fail("case %s is voided, yet money left under %v", c.key, keys)
				}
			}
			transferred += principal
		}
		if reserved != bal.Reserved || posted != bal.Paid {
			r.fail("balance %s/%d says reserved %d paid %d; its reservations add up to %d and %d", b.inn[:4], b.period, bal.Reserved, bal.Paid, reserved, posted)
		}
		if transferred < posted {
			r.fail("balance %s/%d: %d paid, the treasury holds %d", b.inn[:4], b.period, posted, transferred)
		}
	}
}

// settle brings every case to an end, as the workflows would: the requisites settle,
// every payout in flight is retried until it is paid, or cancelled and voided.
func (r *run) settle() {
	for inn, p := range r.pending {
		if p {
			r.setRequisites(inn, false)
		}
	}
	r.faults.mu.Lock()
	r.faults.mode = ""
	r.faults.mu.Unlock()
	for _, c := range r.cases {
		if c.state != contract.ReservationReserved {
			continue
		}
		if a := c.current(); a != nil {
			res, err := r.payout.Pay(r.ctx, a.in)
			if err == nil {
				r.receipt(a, res.TransferID)
				r.posted(c)
				continue
			}
			r.cancelCase(c, true)
		}
		if c.state == contract.ReservationReserved && !c.abandoned && c.hasClaim() {
			r.cancelCase(c, true)
		}
	}
}

// checkSettled: with nothing in flight, the treasury and the ledger agree to the kopeck.
func (r *run) checkSettled() {
	for _, b := range r.bals {
		var bal ledger.Balance
		if _, err := store.Get(r.ctx, r.cfg.DB, r.cfg.Tables.Reservations, map[string]types.AttributeValue{"key": store.S(ledger.BalanceKey(b.inn, b.period))}, &bal); err != nil {
			r.fail("%v", err)
		}
		var transferred, stillReserved int64
		for _, c := range r.cases {
			if c.bal != b {
				continue
			}
			for _, a := range c.attempts {
				if rec := r.treasury(a.in.PayoutKey); rec.PayoutKey != "" && rec.Transferred() {
					transferred += rec.Principal
				}
			}
			if c.state == contract.ReservationReserved {
				stillReserved += c.amount
			}
		}
		if transferred != bal.Paid || stillReserved != bal.Reserved {
			r.fail("settled balance %s/%d: paid %d reserved %d; the treasury holds %d, the open cases %d", b.inn[:4], b.period,
				bal.Paid, bal.Reserved, transferred, stillReserved)
		}
	}
}

// Add sums the stats of several runs.
func (s *Stats) Add(o Stats) { s.add(o) }

func (s *Stats) add(o Stats) {
	s.Steps += o.Steps
	s.Cases += o.Cases
	s.Reserved += o.Reserved
	s.Refused += o.Refused
	s.Capped += o.Capped
	s.Paid += o.Paid
	s.Voided += o.Voided
	s.Faults += o.Faults
	s.Restarts += o.Restarts
	s.Bursts += o.Bursts
	s.Expired += o.Expired
	s.PaidKopecks += o.PaidKopecks
}

var debugLog = false
