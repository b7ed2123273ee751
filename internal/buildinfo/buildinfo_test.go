package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestIDFromEnvironmentWins(t *testing.T) {
	t.Setenv("TAXFLOW_BUILD_ID", "release-2026.11.2")
	if got := ID(); got != "release-2026.11.2" {
		t.Fatalf("ID() = %q, want the TAXFLOW_BUILD_ID value", got)
	}
	o := WorkerOptions()
	if v := o.DeploymentOptions.Version; v.BuildID != "release-2026.11.2" || v.DeploymentName != DeploymentName {
		t.Fatalf("worker version = %+v", v)
	}
	if o.DeploymentOptions.UseVersioning {
		t.Fatal("versioned routing must stay off until the deployment's current version is managed")
	}
}

func TestIDFromVCS(t *testing.T) {
	for _, c := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, "dev"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "65588de0123456789abcdef"}}, "65588de01234"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "65588de0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}, "65588de01234+dirty"},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, "dev"},
	} {
		if got := fromSettings(c.settings); got != c.want {
			t.Errorf("fromSettings(%v) = %q, want %q", c.settings, got, c.want)
		}
	}
}
