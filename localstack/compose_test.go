package localstack

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/taxflow/taxflow/internal/config"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

func TestComposeMatchesWhatTaxflowReads(t *testing.T) {
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	for _, name := range []string{"localstack", "temporal", "provision", "worker", "api"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}
	ports := map[string][]string{"localstack": {"4566"}, "temporal": {"7233", "8233"}, "api": {"8080"}}
	for svc, want := range ports {
		for _, p := range want {
			if !slices.ContainsFunc(c.Services[svc].Ports, func(s string) bool { return strings.HasSuffix(s, ":"+p) }) {
				t.Errorf("%s does not publish port %s", svc, p)
			}
		}
	}
	// taxflow's services use only variables taxflow reads, and the ones that matter.
	for _, svc := range []string{"provision", "worker", "api"} {
		env := c.Services[svc].Environment
		for k := range env {
			if !slices.Contains(config.Variables, k) {
				t.Errorf("%s sets %s, which taxflow does not read", svc, k)
			}
		}
		for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "TEMPORAL_ADDRESS"} {
			if env[k] == "" {
				t.Errorf("%s does not set %s", svc, k)
			}
		}
		if _, err := config.Load(func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s: its environment does not load: %v", svc, err)
		}
	}
	// the same provisioning code as every other stack
	if !strings.Contains(strings.Join(c.Services["provision"].Command, " "), "localstack/init/apply.sh") {
		t.Error("provision does not run the init hook")
	}
	hook, err := os.ReadFile("init/apply.sh")
	if err != nil || !strings.Contains(string(hook), "taxflow infra apply") {
		t.Errorf("init hook does not run taxflow infra apply: %v", err)
	}
}
