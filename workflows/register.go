// Package workflows holds taxflow's processes: deterministic workflow code only, one
// file per process with its test. Steps run as activities (package activities).
package workflows

import "go.temporal.io/sdk/worker"

// Register adds every workflow to a worker (or a replayer).
func Register(w worker.WorkflowRegistry) {
	w.RegisterWorkflow(SelfCheck)
	w.RegisterWorkflow(Refund)
	w.RegisterWorkflow(Bare)
	w.RegisterWorkflow(IdentityVerification)
	w.RegisterWorkflow(Account)
	w.RegisterWorkflow(Declaration)
	w.RegisterWorkflow(Sweep)
	w.RegisterWorkflow(BatchImport)
	w.RegisterWorkflow(EventRelay)
	w.RegisterWorkflow(WebhookEndpoint)
}
