// Package logging builds the zerolog logger every taxflow process uses. Every line passes
// through pii.RedactBytes before it is written. (Its adapter for the Temporal SDK is
// temporalclient.Logger: the functions log through this package and know nothing of Temporal.)
package logging

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

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
