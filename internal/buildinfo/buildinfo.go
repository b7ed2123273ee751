// Package buildinfo names the code a worker runs: the build id that Temporal stamps on
// every workflow task the worker completes, so a history shows which build made each
// step, and an operator can tell which runs still need an old build (README: "Changing a
// workflow safely").
package buildinfo

import (
	"os"
	"runtime/debug"

	"go.temporal.io/sdk/worker"
)

// DeploymentName is the worker deployment every taxflow worker belongs to.
const DeploymentName = "taxflow"

// ID is TAXFLOW_BUILD_ID when set (a release pipeline sets it to the release tag), else
// the VCS revision the binary was built from (its first 12 hex digits, "+dirty" for a tree
// with uncommitted changes), else "dev".
func ID() string {
	if v := os.Getenv("TAXFLOW_BUILD_ID"); v != "" {
		return v
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return fromSettings(info.Settings)
}

func fromSettings(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// WorkerOptions are the options every taxflow worker starts with: it reports its
// deployment version (deployment "taxflow", build id ID()). Versioned routing
// (UseVersioning, pinned workflows) stays off: replay-safe changes go behind
// workflow.GetVersion, and the README says when to move to pinned deployments instead.
func WorkerOptions() worker.Options {
	return worker.Options{DeploymentOptions: worker.DeploymentOptions{
		Version: worker.WorkerDeploymentVersion{DeploymentName: DeploymentName, BuildID: ID()},
	}}
}
