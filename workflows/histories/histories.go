// Package histories records workflow histories from a real run and replays them against
// the current workflow code. The recorded histories of every waiting state live in
// workflows/testdata/histories; replaying them in `make test` is what tells a change that
// would break the cases in flight (a non-deterministic change) from a safe one.
package histories

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/taxflow/taxflow/workflows"
)

// Fetch returns every event of a workflow run's history so far (runID "" is the latest run).
func Fetch(ctx context.Context, c client.Client, id, runID string) (*historypb.History, error) {
	h := &historypb.History{}
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		h.Events = append(h.Events, ev)
	}
	if len(h.Events) == 0 {
		return nil, fmt.Errorf("history of %s is empty", id)
	}
	return h, nil
}

// Decoder turns encoded payloads back into plain ones (the payload codec's Decode).
type Decoder func([]*commonpb.Payload) ([]*commonpb.Payload, error)

// Decode replaces every payload in h, wherever it sits (inputs, results, failures'
// encoded attributes, headers, markers), by its decoded form, so that a recorded history
// replays with the default data converter and does not depend on a payload key.
func Decode(h *historypb.History, dec Decoder) error {
	for _, p := range Payloads(h) {
		out, err := dec([]*commonpb.Payload{p})
		if err != nil {
			return fmt.Errorf("decode a payload: %w", err)
		}
		if len(out) != 1 {
			return fmt.Errorf("decode a payload: %d payloads back, want 1", len(out))
		}
		if out[0] != p {
			plain := proto.Clone(out[0])
			proto.Reset(p)
			proto.Merge(p, plain)
		}
	}
	return nil
}

// Payloads is every payload inside m (a history, an event), wherever it sits, in order.
func Payloads(m proto.Message) []*commonpb.Payload {
	var out []*commonpb.Payload
	collect(m.ProtoReflect(), &out)
	return out
}

func collect(m protoreflect.Message, out *[]*commonpb.Payload) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		*out = append(*out, p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					collect(mv.Message(), out)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					collect(v.List().Get(i).Message(), out)
				}
			}
		case fd.Message() != nil:
			collect(v.Message(), out)
		}
		return true
	})
}

// Marshal is the history as JSON in the form `temporal workflow show --output json` writes
// and worker.WorkflowReplayer reads.
func Marshal(h *historypb.History) ([]byte, error) {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("marshal history: %w", err)
	}
	return append(b, '\n'), nil
}

// Write stores h as JSON at path.
func Write(path string, h *historypb.History) error {
	b, err := Marshal(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

// Load reads a history that Write (or the Temporal CLI) stored.
func Load(path string) (*historypb.History, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	h := &historypb.History{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("load history %s: %w", filepath.Base(path), err)
	}
	return h, nil
}

// Replay replays h against the current code of every workflow. A non-nil error means
// the code would not take the same steps the recorded run took: deploying it would break
// every run in that state.
func Replay(h *historypb.History, logger log.Logger) error {
	if logger == nil {
		// The replayer logs every replayed step; only the verdict matters here.
		logger = log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	// No deadlock detection: it measures how long a coroutine ran on the wall clock (1 s),
	// which on a loaded machine is the scheduler's doing, not the workflow's; what a
	// replay checks is the command sequence.
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DisableDeadlockDetection: true})
	if err != nil {
		return fmt.Errorf("replayer: %w", err)
	}
	workflows.Register(r)
	return r.ReplayWorkflowHistory(logger, h)
}

// WorkflowType is the type of the workflow whose history h is.
func WorkflowType(h *historypb.History) string {
	if len(h.Events) == 0 {
		return ""
	}
	return h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
}

// Files lists the recorded histories (*.json) under dir and its subdirectories (kept
// histories of earlier versions live there until their patch is retired), sorted.
func Files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".json") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list histories: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// WaitingStates names the recorded history of every waiting state of every workflow: the
// file workflows/testdata/histories/<name>.json. `make histories` records them from a
// real run (internal/e2e TestRecordWaitingStateHistories); the replay test fails when one
// is missing, so a state cannot silently drop out of the check.
var WaitingStates = map[string][]string{
	"Refund":               {"refund-awaiting-documents", "refund-in-review", "refund-held-for-requisites", "refund-payout-failed", "refund-paid"},
	"IdentityVerification": {"identity-needs-documents", "identity-manual-review"},
	"Declaration":          {"declaration-clarification", "declaration-in-review", "declaration-decided-appeal-window"},
	"Account":              {"account-auto-unlock-pending", "account-awaiting-specialist", "account-after-continue-as-new"},
	"Sweep":                {"sweep-reminders", "sweep-outbox"},
	"BatchImport":          {"batch-done"},
	"EventRelay":           {"event-relay-waiting"},
	"WebhookEndpoint":      {"webhook-disabled"},
}
