package temporalclient

import (
	"fmt"

	"github.com/rs/zerolog"
	tlog "go.temporal.io/sdk/log"
)

// Logger adapts a zerolog logger (internal/logging) to the Temporal SDK's logger interface.
type Logger struct{ l zerolog.Logger }

var (
	_ tlog.Logger     = Logger{}
	_ tlog.WithLogger = Logger{}
)

// NewLogger wraps l for client.Options.Logger and worker logging.
func NewLogger(l zerolog.Logger) Logger { return Logger{l: l} }

func (t Logger) Debug(msg string, kv ...any) { t.event(t.l.Debug(), msg, kv) }
func (t Logger) Info(msg string, kv ...any)  { t.event(t.l.Info(), msg, kv) }
func (t Logger) Warn(msg string, kv ...any)  { t.event(t.l.Warn(), msg, kv) }
func (t Logger) Error(msg string, kv ...any) { t.event(t.l.Error(), msg, kv) }

// With returns a logger that adds the key-value pairs to every line.
func (t Logger) With(kv ...any) tlog.Logger {
	return Logger{l: fields(t.l.With(), kv).Logger()}
}

func (t Logger) event(e *zerolog.Event, msg string, kv []any) {
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
