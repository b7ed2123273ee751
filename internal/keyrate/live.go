package keyrate

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// StoreKey is where an operator's table lives in the trust bucket (internal/trust): a
// bucket every function may at most read, so no compromised function can raise the
// rate the treasury pays interest at; only an operator writes it (taxflow keyrate).
const StoreKey = "keyrate/key-rate.json"

// MaxSize bounds a stored table.
const MaxSize = 1 << 20

// Store holds the operator's table: Get returns nil, nil while none was put.
type Store interface {
	Get(ctx context.Context) ([]byte, error)
	Put(ctx context.Context, body []byte) error
}

// Current is the table in force: the stored one when it is checked at least as far as
// base (the file shipped with the binary or TAXFLOW_KEY_RATE_FILE), else base. So a
// release carrying a newer file supersedes an older operator's table, and an operator's
// addition supersedes the release until the next one.
func Current(ctx context.Context, base *Table, store Store, now time.Time) (*Table, error) {
	if store == nil {
		return base, nil
	}
	b, err := store.Get(ctx)
	if err != nil || b == nil {
		return base, err
	}
	st, err := Parse(b, now)
	if err != nil {
		return base, fmt.Errorf("stored key rate table %s: %w", StoreKey, err)
	}
	if st.checkedThrough.Before(base.checkedThrough) {
		return base, nil
	}
	return st, nil
}

// Live is the table the worker computes with: Current, read again once it is older than
// TTL, so an operator's addition reaches every running worker within TTL without a
// redeploy or a restart. A store that cannot be read keeps the last table (the error is
// returned for the log); it is never a reason to stop paying.
type Live struct {
	Base  *Table
	Store Store
	TTL   time.Duration
	Now   func() time.Time

	mu     sync.Mutex
	cur    *Table
	loaded time.Time
}

// Table is the current table, read again when older than TTL.
func (l *Live) Table(ctx context.Context) (*Table, error) {
	l.mu.Lock()
	cur, fresh := l.cur, l.cur != nil && l.now().Sub(l.loaded) < l.TTL
	l.mu.Unlock()
	if fresh {
		return cur, nil
	}
	return l.Refresh(ctx)
}

// Cached is the last table read (Base before the first read); it does no I/O.
func (l *Live) Cached() *Table {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return l.Base
	}
	return l.cur
}

// Refresh reads the table now.
func (l *Live) Refresh(ctx context.Context) (*Table, error) {
	t, err := Current(ctx, l.Base, l.Store, l.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil && l.cur != nil {
		return l.cur, err // keep the last good table
	}
	l.cur, l.loaded = t, l.now()
	return t, err
}

// Run refreshes the table every TTL until ctx ends (the metric reads Cached).
func (l *Live) Run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(l.TTL)
	defer t.Stop()
	for {
		if _, err := l.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Live) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}
