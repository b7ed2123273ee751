package workflows

import (
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

// The test environment's two wall-clock guards — a workflow coroutine that does not yield
// within DeadlockDetectionTimeout (1 s by default) fails the task, and a test whose
// workflow waits longer than the test timeout (3 s) for an activity panics — measure the
// machine, not the workflow: under -race, with every package's tests sharing two cores,
// a coroutine can be descheduled past a second. The deadlock guard then gives up on a
// coroutine that is still running, and the test fails on a data race between it and the
// test's event loop (seen in CI: a declaration's child refund). Workflow code that really
// blocks is found by workflowcheck (make lint) and by the end-to-end tests, which run the
// worker with its production options.
const (
	testDeadlockTimeout = time.Minute
	testWallTimeout     = 5 * time.Minute
)

// newTestEnv is s.NewTestWorkflowEnvironment with guards sized for a loaded machine.
func newTestEnv(s *testsuite.WorkflowTestSuite) *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: testDeadlockTimeout})
	env.SetTestTimeout(testWallTimeout)
	return env
}
