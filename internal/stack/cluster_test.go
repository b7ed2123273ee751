package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func clusterEnv(t *testing.T, extra map[string]string) Stack {
	t.Helper()
	env := map[string]string{"TAXFLOW_RUN_DIR": t.TempDir(), "TAXFLOW_TEMPORAL": "server", "TAXFLOW_TEMPORAL_PORT": "35233",
		"TAXFLOW_TEMPORAL_CLUSTER_PORT": "25234", "TAXFLOW_POSTGRES_PORT": "35432", "TAXFLOW_TEMPORAL_UI_PORT": "35280", "TAXFLOW_CODEC_PORT": "35089"}
	for k, v := range extra {
		env[k] = v
	}
	s, err := FromEnv(func(k string) string { return env[k] }, "/bin/taxflow")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFromEnvTemporalBackEnd(t *testing.T) {
	s := clusterEnv(t, nil)
	if s.Temporal != TemporalServer || s.Shards != DefaultShards || s.Ports.Postgres != 35432 || s.Ports.TemporalCluster != 25234 {
		t.Fatalf("got %+v", s)
	}
	var names []string
	for _, svc := range s.services() {
		names = append(names, svc.name)
	}
	want := "postgres temporal-history temporal-matching temporal-frontend temporal-worker temporal-ui dynamodb s3 lambda"
	if strings.Join(names, " ") != want {
		t.Fatalf("services %v, want %s (down stops them in reverse: PostgreSQL last)", names, want)
	}
	dev := clusterEnv(t, map[string]string{"TAXFLOW_TEMPORAL": ""})
	if dev.Temporal != TemporalDev || dev.services()[0].name != "temporal" {
		t.Fatalf("the dev server is not the default: %+v", dev)
	}
	for k, v := range map[string]string{"TAXFLOW_TEMPORAL": "cloud", "TAXFLOW_TEMPORAL_SHARDS": "zero", "TAXFLOW_TEMPORAL_CLUSTER_PORT": "65530"} {
		_, err := FromEnv(func(name string) string {
			if name == k {
				return v
			}
			return map[string]string{"TAXFLOW_RUN_DIR": t.TempDir()}[name]
		}, "/bin/taxflow")
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: want an error naming it, got %v", k, v, err)
		}
	}
}

// The checked-in configuration renders into valid YAML with the stack's ports, 16 shards,
// SQL visibility on PostgreSQL, archival off, and the Web UI pointed at our codec server.
func TestClusterConfigRendersTheStacksSettings(t *testing.T) {
	s := clusterEnv(t, nil)
	if err := s.renderClusterConfig(); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Persistence struct {
			VisibilityStore  string `yaml:"visibilityStore"`
			NumHistoryShards int    `yaml:"numHistoryShards"`
			Datastores       map[string]struct {
				SQL struct {
					PluginName   string `yaml:"pluginName"`
					DatabaseName string `yaml:"databaseName"`
					ConnectAddr  string `yaml:"connectAddr"`
					User         string `yaml:"user"`
					Password     string `yaml:"password"`
				} `yaml:"sql"`
			}
		}
		Services map[string]struct {
			RPC struct {
				GRPCPort       int    `yaml:"grpcPort"`
				MembershipPort int    `yaml:"membershipPort"`
				BindOnIP       string `yaml:"bindOnIP"`
			} `yaml:"rpc"`
		}
		Archival struct {
			History, Visibility struct{ State string }
		}
		NamespaceDefaults struct {
			Archival struct{ History, Visibility struct{ State string } }
		} `yaml:"namespaceDefaults"`
		DynamicConfigClient struct{ Filepath string } `yaml:"dynamicConfigClient"`
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "temporal", "config", "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Persistence
	if p.NumHistoryShards != 16 || p.Datastores[p.VisibilityStore].SQL.PluginName != "postgres12" ||
		p.Datastores[p.VisibilityStore].SQL.DatabaseName != "temporal_visibility" || p.Datastores["default"].SQL.ConnectAddr != "127.0.0.1:35432" ||
		p.Datastores["default"].SQL.User != "temporal" || len(p.Datastores["default"].SQL.Password) < 40 {
		t.Errorf("persistence: %+v", p)
	}
	ports := map[int]string{}
	for name, svc := range cfg.Services {
		if svc.RPC.BindOnIP != "127.0.0.1" {
			t.Errorf("%s binds %q, not loopback", name, svc.RPC.BindOnIP)
		}
		for _, port := range []int{svc.RPC.GRPCPort, svc.RPC.MembershipPort} {
			if other, dup := ports[port]; dup || (port != 35233 && (port < 25234 || port > 25241)) {
				t.Errorf("%s port %d: outside the stack's ports or shared with %s", name, port, other)
			}
			ports[port] = name
		}
	}
	if len(cfg.Services) != 4 || cfg.Services["frontend"].RPC.GRPCPort != 35233 {
		t.Errorf("services: %+v", cfg.Services)
	}
	if cfg.Archival.History.State != "disabled" || cfg.Archival.Visibility.State != "disabled" ||
		cfg.NamespaceDefaults.Archival.History.State != "disabled" || cfg.NamespaceDefaults.Archival.Visibility.State != "disabled" {
		t.Errorf("archival: %+v %+v", cfg.Archival, cfg.NamespaceDefaults)
	}
	if _, err := os.Stat(cfg.DynamicConfigClient.Filepath); err != nil {
		t.Errorf("dynamic config: %v", err)
	}
	var ui struct {
		TemporalGrpcAddress string `yaml:"temporalGrpcAddress"`
		Port                int
		Codec               struct{ Endpoint string }
	}
	b, err = os.ReadFile(filepath.Join(s.Dir, "temporal", "ui", "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ui); err != nil {
		t.Fatal(err)
	}
	token, _ := s.CodecToken()
	if ui.TemporalGrpcAddress != "127.0.0.1:35233" || ui.Port != 35280 || ui.Codec.Endpoint != "http://127.0.0.1:35089/codec/"+token {
		t.Errorf("ui: %+v", ui)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, "temporal", "config", "cluster.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the config holds the database password: %v %v", fi, err)
	}
}

// clusterTools makes a tools folder with everything the cluster's Check looks for, programs
// that record their start and sleep.
func clusterTools(t *testing.T, dir string) string {
	t.Helper()
	tools := fakeTools(t, dir, map[string]string{"bin/temporal-server": "exec sleep 300", "bin/temporal-sql-tool": "exit 0",
		"bin/temporal-ui-server": "exec sleep 300", "bin/minio": "exec sleep 300", "self": "exec sleep 300"})
	for _, d := range []string{"temporal-schema/postgresql/v12/temporal/versioned/v1.18", "temporal-schema/postgresql/v12/visibility/versioned/v1.9"} {
		if err := os.MkdirAll(filepath.Join(tools, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tools
}

func nothingStarted(t *testing.T, s Stack, dir string) {
	t.Helper()
	started, _ := filepath.Glob(filepath.Join(dir, "*.started"))
	pids, _ := filepath.Glob(filepath.Join(s.Dir, "*.pid"))
	if len(started)+len(pids) > 0 {
		t.Fatalf("something started: %v %v", started, pids)
	}
}

func TestClusterUpRefusesMissingPostgreSQL(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	s := clusterEnv(t, map[string]string{"TAXFLOW_POSTGRES_BIN": filepath.Join(dir, "nowhere")})
	s.Tools = clusterTools(t, dir)
	s.Self = filepath.Join(s.Tools, "self")
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL 15 is not installed") || !strings.Contains(err.Error(), "TAXFLOW_POSTGRES_BIN") {
		t.Fatalf("got %v", err)
	}
	nothingStarted(t, s, dir)
}

func TestClusterUpRefusesMissingTools(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	s := clusterEnv(t, nil)
	s.Tools = fakeTools(t, dir, map[string]string{"bin/minio": "exec sleep 300"})
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "bin/temporal-server") || !strings.Contains(err.Error(), "make cluster-setup") {
		t.Fatalf("got %v", err)
	}
}

// Data made with one shard count is never started with another: Up names both counts and
// starts nothing.
func TestClusterUpRefusesAnotherShardCount(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	s := clusterEnv(t, map[string]string{"TAXFLOW_TEMPORAL_SHARDS": "32"})
	s.Tools = clusterTools(t, dir)
	s.PostgresBin = fakePostgres(t)
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.shardsFile(), []byte("16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "made with 16 history shards") || !strings.Contains(err.Error(), "asks for 32") {
		t.Fatalf("got %v", err)
	}
	nothingStarted(t, s, dir)
}

func fakePostgres(t *testing.T) string {
	bin := t.TempDir()
	for _, p := range []string{"postgres", "initdb", "psql"} {
		if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// A taken port of the cluster is named with its variable before anything starts.
func TestClusterUpRefusesATakenPort(t *testing.T) {
	requireJava(t)
	for _, which := range []string{"postgres", "history"} {
		dir := t.TempDir()
		// a run of eight free ports below 32768, the first of which another program takes
		port := freeRun(t, 8)
		l, err := net.Listen("tcp", addr(port))
		if err != nil {
			t.Fatal(err)
		}
		s := Stack{Dir: t.TempDir(), Temporal: TemporalServer, Shards: 16, Tools: clusterTools(t, dir), PostgresBin: fakePostgres(t), Ports: freePorts(t)}
		s.Self = filepath.Join(s.Tools, "self")
		var want string
		if which == "postgres" {
			s.Ports.Postgres, s.Ports.TemporalCluster = port, port+1
			want = "TAXFLOW_POSTGRES_PORT"
		} else {
			s.Ports.Postgres, s.Ports.TemporalCluster = freeRun(t, 1), port
			want = "TAXFLOW_TEMPORAL_CLUSTER_PORT"
		}
		err = s.Up(context.Background(), func(string) {})
		_ = l.Close()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d (%s)", port, want)) {
			t.Fatalf("%s: want an error naming port %d and %s, got %v", which, port, want, err)
		}
		nothingStarted(t, s, dir)
	}
}

// freeRun finds n consecutive free ports (the cluster's services take eight in a row).
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for base := 21000; base < 32000; base += n {
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = portFree(p) == nil
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free run of ports")
	return 0
}

// A run directory whose stack runs with one back end refuses an up with the other.
func TestUpRefusesTheOtherBackEndWhileOneRuns(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	s := clusterEnv(t, nil)
	s.Tools = clusterTools(t, dir)
	if err := os.WriteFile(filepath.Join(s.Dir, "temporal.mode"), []byte("dev\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// a live process as the dev stack's "s3"
	if err := os.WriteFile(s.pidFile("s3"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "runs with the Temporal dev back end") {
		t.Fatalf("got %v", err)
	}
}

// Temporal keeps membership ports in a PostgreSQL smallint: a base whose ports pass 32767
// is refused before anything starts, not found when the history service dies.
func TestClusterUpRefusesMembershipPortsAboveSmallint(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	s := clusterEnv(t, map[string]string{"TAXFLOW_TEMPORAL_CLUSTER_PORT": "32761"})
	s.Tools = clusterTools(t, dir)
	s.PostgresBin = fakePostgres(t)
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "TAXFLOW_TEMPORAL_CLUSTER_PORT=32761") || !strings.Contains(err.Error(), "32767") {
		t.Fatalf("got %v", err)
	}
	nothingStarted(t, s, dir)
}

func TestLatestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1.0", "v1.9", "v1.10", "v1.2", "notes"} {
		if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := latestVersion(dir); err != nil || got != "1.10" {
		t.Fatalf("got %q %v, want 1.10 (numeric, not lexical)", got, err)
	}
}

// Every Temporal service but the first waits for the one before it (a fresh database's
// cluster metadata is written by the first to start; two at once race for it).
func TestClusterServicesStartOneAtATime(t *testing.T) {
	s := clusterEnv(t, nil)
	for _, svc := range s.services() {
		if strings.HasPrefix(svc.name, "temporal-") && svc.name != "temporal-ui" && svc.prepare == nil {
			t.Errorf("%s starts without waiting for the services before it", svc.name)
		}
	}
}
