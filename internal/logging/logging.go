// Package logging builds the zerolog logger every taxflow process uses and adapts it
// for the Temporal SDK. Every line passes through pii.RedactBytes before it is written.
package logging

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	tlog "go.temporal.io/sdk/log"

	"github.com/taxflow/taxflow/internal/pii"
)

// New returns a logger writing JSON (format "json") or readable console lines
// ("console") at the given level to w.
func New(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("log level %q: want trace, debug, info, warn or error", level)
	}
	out := io.Writer(&redactingWriter{w: w})
	switch format {
	case "json":
	case "console":
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q: want json or console", format)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}

// Default is the logger for code that runs before configuration is read.
func Default() zerolog.Logger {
	l, _ := New(os.Stderr, "json", "info")
	return l
}

// redactingWriter masks personal data in each written line. zerolog writes one
// whole event per Write call, so a pattern never straddles two calls.
type redactingWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(pii.RedactBytes(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Temporal adapts a zerolog logger to the Temporal SDK's logger interface.
type Temporal struct{ l zerolog.Logger }

var (
	_ tlog.Logger     = Temporal{}
	_ tlog.WithLogger = Temporal{}
)

// NewTemporal wraps l for client.Options.Logger and worker logging.
func NewTemporal(l zerolog.Logger) Temporal { return Temporal{l: l} }

func (t Temporal) Debug(msg string, kv ...any) { t.event(t.l.Debug(), msg, kv) }
func (t Temporal) Info(msg string, kv ...any)  { t.event(t.l.Info(), msg, kv) }
func (t Temporal) Warn(msg string, kv ...any)  { t.event(t.l.Warn(), msg, kv) }
func (t Temporal) Error(msg string, kv ...any) { t.event(t.l.Error(), msg, kv) }

// With returns a logger that adds the key-value pairs to every line.
func (t Temporal) With(kv ...any) tlog.Logger {
	return Temporal{l: fields(t.l.With(), kv).Logger()}
}

func (t Temporal) event(e *zerolog.Event, msg string, kv []any) {
	if e == nil {
		return
	}
	for i := 0; i < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		if i+1 >= len(kv) {
			e = e.Interface("EXTRA_VALUE_AT_END", kv[i])
			break
		}
		e = e.Interface(key, kv[i+1])
	}
	e.Msg(msg)
}

func fields(c zerolog.Context, kv []any) zerolog.Context {
	for i := 0; i+1 < len(kv); i += 2 {
		c = c.Interface(fmt.Sprint(kv[i]), kv[i+1])
	}
	return c
}
