package infra

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// The subject key reaches the API alone, as a NoEcho parameter like the payload key: no
// function and no worker needs it (workflows pass their own TaxflowSubject on).
func TestSubjectKeyOnlyForTheAPI(t *testing.T) {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Parameters map[string]struct {
			NoEcho bool `yaml:"NoEcho"`
		} `yaml:"Parameters"`
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Environment struct {
					Variables map[string]any `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"SubjectKey", "SubjectKeysPrevious"} {
		if par, ok := doc.Parameters[p]; !ok || !par.NoEcho {
			t.Errorf("parameter %s: declared %v, NoEcho %v", p, ok, par.NoEcho)
		}
	}
	api := "Function" + camel(Declare().API.Function.Name)
	for name, r := range doc.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		_, has := r.Properties.Environment.Variables["TAXFLOW_SUBJECT_KEY"]
		_, prev := r.Properties.Environment.Variables["TAXFLOW_SUBJECT_KEYS_PREVIOUS"]
		if (name == api) != has || has != prev {
			t.Errorf("%s: TAXFLOW_SUBJECT_KEY %v, TAXFLOW_SUBJECT_KEYS_PREVIOUS %v (only %s may have them, both)", name, has, prev, api)
		}
	}
}
