package stack

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The two Temporal back ends of the stack: the dev server (one process, SQLite; the default of
// `make dev` and `make test`) or a cluster of the Temporal server's four services on PostgreSQL.
const (
	TemporalDev    = "dev"
	TemporalServer = "server"
)

// Namespace is the namespace taxflow runs in; NamespaceRetention is how long its closed
// workflows are kept (archival is off). The dev server makes "default" with 24 h; the cluster
// sets and checks it on every `stack up`, so a case closed on Friday is still readable on Monday.
const (
	Namespace          = "default"
	NamespaceRetention = 7 * 24 * time.Hour
)

// SearchAttributes are taxflow's custom search attributes, registered on either back end.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	"TaxflowProcess": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"TaxflowStatus":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"TaxflowSubject": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// DefaultShards is the cluster's history shard count (TAXFLOW_TEMPORAL_SHARDS). It is fixed
// for the life of the data.
const DefaultShards = 16

// pgUser is the system user PostgreSQL runs as when the stack is started by root: the
// postgres server refuses to run as root. `stack up` creates it (no home, no shell) if missing.
const pgUser = "taxflow-pg"

// The Temporal services of the cluster, in the order they start (they stop in reverse).
var temporalServices = []string{"history", "matching", "frontend", "worker"}

//go:embed temporal/cluster.yaml temporal/dynamicconfig.yaml temporal/ui.yaml
var clusterFiles embed.FS

// clusterPorts are the Temporal services' own ports: TAXFLOW_TEMPORAL_CLUSTER_PORT and the
// seven after it. The frontend's gRPC port stays TAXFLOW_TEMPORAL_PORT.
type clusterPorts struct {
	History, HistoryMembership, Matching, MatchingMembership, Worker, WorkerMembership, FrontendMembership, FrontendHTTP int
}

func (s Stack) clusterPorts() clusterPorts {
	b := s.Ports.TemporalCluster
	return clusterPorts{b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7}
}

func (s Stack) pgBin(name string) string { return filepath.Join(s.PostgresBin, name) }

// pgDir is PostgreSQL's directory: outside data/ (which is private to the stack's owner), so
// the PostgreSQL user can reach it; pgData is its cluster's data directory.
func (s Stack) pgDir() string  { return filepath.Join(s.Dir, "postgres") }
func (s Stack) pgData() string { return filepath.Join(s.pgDir(), "data") }

// asPGUser runs a PostgreSQL server program as pgUser when we are root, as ourselves otherwise.
func (s Stack) asPGUser(name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(s.pgBin(name), args...)
	}
	return exec.Command("setpriv", append([]string{"--reuid=" + pgUser, "--regid=" + pgUser, "--clear-groups", "--", s.pgBin(name)}, args...)...)
}

// checkCluster tells what the cluster needs and lacks, before anything starts.
func (s Stack) checkCluster() error {
	var missing []string
	for _, p := range []string{"bin/temporal-server", "bin/temporal-sql-tool", "bin/temporal-ui-server",
		"temporal-schema/postgresql/v12/temporal/versioned", "temporal-schema/postgresql/v12/visibility/versioned"} {
		if _, err := os.Stat(filepath.Join(s.Tools, p)); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tools of the Temporal cluster missing in %s (%s): run `make cluster-setup`", s.Tools, strings.Join(missing, ", "))
	}
	for _, p := range []string{"postgres", "initdb", "psql"} {
		if _, err := os.Stat(s.pgBin(p)); err != nil {
			return fmt.Errorf("PostgreSQL 15 is not installed (no %s): install it (Debian: apt-get install postgresql-15) or set TAXFLOW_POSTGRES_BIN to its bin directory", s.pgBin(p))
		}
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			return errors.New("running as root, the stack starts PostgreSQL as the user " + pgUser + " with setpriv, which is missing (Debian: apt-get install util-linux)")
		}
	}
	// Temporal's PostgreSQL schema keeps a service's membership port in a smallint
	// (cluster_membership.rpc_port): a port above 32767 fails the service at start.
	if last := s.Ports.TemporalCluster + 7; last > 32767 {
		return fmt.Errorf("TAXFLOW_TEMPORAL_CLUSTER_PORT=%d: the Temporal services' ports run up to %d, and Temporal's PostgreSQL schema "+
			"keeps membership ports as a smallint (at most 32767): choose a base of 32760 or less", s.Ports.TemporalCluster, last)
	}
	if s.Shards < 1 || s.Shards > 16384 {
		return fmt.Errorf("TAXFLOW_TEMPORAL_SHARDS=%d must be 1-16384", s.Shards)
	}
	if b, err := os.ReadFile(s.shardsFile()); err == nil {
		if had, _ := strconv.Atoi(strings.TrimSpace(string(b))); had != s.Shards {
			return fmt.Errorf("the Temporal data in %s was made with %d history shards, and TAXFLOW_TEMPORAL_SHARDS asks for %d: "+
				"the count cannot change for existing data; set TAXFLOW_TEMPORAL_SHARDS=%d, or remove %s to start afresh", s.Dir, had, s.Shards, had, s.Dir)
		}
	}
	return nil
}

func (s Stack) shardsFile() string { return filepath.Join(s.Dir, "data", "temporal.shards") }

func (s Stack) clusterServices() []service {
	tools := func(p ...string) string { return filepath.Join(append([]string{s.Tools}, p...)...) }
	cp := s.clusterPorts()
	svcs := []service{{
		name:    "postgres",
		ports:   []int{s.Ports.Postgres},
		where:   fmt.Sprintf("PostgreSQL 127.0.0.1:%d (data %s)", s.Ports.Postgres, s.pgData()),
		prepare: s.initPostgres,
		command: func() (*exec.Cmd, error) {
			// TCP on loopback only, no Unix socket (nothing of ours to clash with the system's).
			cmd := s.asPGUser("postgres", "-D", s.pgData(), "-p", strconv.Itoa(s.Ports.Postgres),
				"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200")
			cmd.Dir = s.pgDir()
			return cmd, nil
		},
		healthy: func(ctx context.Context) error {
			_, err := s.psql(ctx, "postgres", "SELECT 1")
			return err
		},
	}}
	grpc := map[string]int{"history": cp.History, "matching": cp.Matching, "frontend": s.Ports.Temporal, "worker": cp.Worker}
	member := map[string]int{"history": cp.HistoryMembership, "matching": cp.MatchingMembership, "frontend": cp.FrontendMembership, "worker": cp.WorkerMembership}
	for _, name := range temporalServices {
		svc := service{
			name:  "temporal-" + name,
			ports: []int{grpc[name], member[name]},
			where: fmt.Sprintf("Temporal %s %s", name, addr(grpc[name])),
			command: func() (*exec.Cmd, error) {
				return exec.Command(tools("bin", "temporal-server"), "--root", filepath.Join(s.Dir, "temporal"), "--config", "config",
					"--env", "cluster", "--allow-no-auth", "start", "--service", name), nil
			},
			healthy: func(ctx context.Context) error { return tcpOpen(ctx, addr(grpc[name])) },
		}
		// One at a time, each once the one before answers: on a new database the first
		// service to start writes the cluster's metadata, and two at once race for it (the
		// loser exits with "SaveClusterMetadata encountered version mismatch").
		svc.prepare = func(context.Context) error { return nil }
		switch name {
		case "history":
			// The schemas exist before the first service starts.
			svc.prepare = s.setUpDatabases
		case "worker":
			// The internal worker serves no gRPC; it answers on its membership port once it
			// has joined the cluster.
			svc.where = fmt.Sprintf("Temporal worker (schedules, batch operations) membership %s", addr(member[name]))
			svc.healthy = func(ctx context.Context) error { return tcpOpen(ctx, addr(member[name])) }
		case "frontend":
			svc.ports = append(svc.ports, cp.FrontendHTTP)
			svc.healthy = func(ctx context.Context) error { return temporalHealthy(ctx, addr(s.Ports.Temporal)) }
		}
		svcs = append(svcs, svc)
	}
	svcs = append(svcs, service{
		name:  "temporal-ui",
		ports: []int{s.Ports.TemporalUI},
		where: fmt.Sprintf("Web UI http://%s (payloads decoded by the codec server at http://%s)", addr(s.Ports.TemporalUI), addr(s.Ports.Codec)),
		command: func() (*exec.Cmd, error) {
			return exec.Command(tools("bin", "temporal-ui-server"), "--root", filepath.Join(s.Dir, "temporal"), "--config", "ui",
				"--env", "cluster", "start"), nil
		},
		healthy: func(ctx context.Context) error {
			return httpOK(ctx, fmt.Sprintf("http://%s/", addr(s.Ports.TemporalUI)))
		},
	})
	return svcs
}

// renderClusterConfig writes the checked-in configurations of the Temporal services and the
// Web UI, with this stack's ports and secrets, under <run dir>/temporal.
func (s Stack) renderClusterConfig() error {
	password, err := s.secretWith("temporal-db.password", base64.RawURLEncoding)
	if err != nil {
		return err
	}
	token, err := s.CodecToken()
	if err != nil {
		return fmt.Errorf("codec token: %w", err)
	}
	cp := s.clusterPorts()
	root := filepath.Join(s.Dir, "temporal")
	vals := map[string]any{
		"Shards": s.Shards, "Postgres": s.Ports.Postgres, "Password": password,
		"Frontend": s.Ports.Temporal, "FrontendMembership": cp.FrontendMembership, "FrontendHTTP": cp.FrontendHTTP,
		"History": cp.History, "HistoryMembership": cp.HistoryMembership, "Matching": cp.Matching,
		"MatchingMembership": cp.MatchingMembership, "Worker": cp.Worker, "WorkerMembership": cp.WorkerMembership,
		"DynamicConfig": filepath.Join(root, "config", "dynamicconfig.yaml"),
		"UI":            s.Ports.TemporalUI, "CodecEndpoint": s.codecEndpoint(token),
	}
	for _, f := range []struct{ src, dst string }{
		{"temporal/cluster.yaml", filepath.Join(root, "config", "cluster.yaml")},
		{"temporal/dynamicconfig.yaml", filepath.Join(root, "config", "dynamicconfig.yaml")},
		{"temporal/ui.yaml", filepath.Join(root, "ui", "cluster.yaml")},
	} {
		t, err := template.New(f.src).Option("missingkey=error").ParseFS(clusterFiles, f.src)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Lookup(filepath.Base(f.src)).Execute(&b, vals); err != nil {
			return fmt.Errorf("render %s: %w", f.src, err)
		}
		if err := os.MkdirAll(filepath.Dir(f.dst), 0o700); err != nil {
			return err
		}
		// It holds the database password.
		if err := os.WriteFile(f.dst, b.Bytes(), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// initPostgres makes the stack's PostgreSQL cluster on the first `up` (later ones reuse it):
// a superuser "postgres" with a password of the stack, password authentication only.
func (s Stack) initPostgres(ctx context.Context) (err error) {
	if os.Geteuid() == 0 {
		if err := ensureUser(pgUser); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.pgDir(), 0o700); err != nil {
		return err
	}
	if err := s.chownToPG(s.pgDir()); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.pgData(), "PG_VERSION")); err == nil {
		return nil
	}
	password, err := s.secretWith("postgres.password", base64.RawURLEncoding)
	if err != nil {
		return err
	}
	// initdb reads the password from a file its user can read; it is removed right after.
	pwfile := filepath.Join(s.pgDir(), "initdb.pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	defer func() { _ = os.Remove(pwfile) }()
	if err := s.chownToPG(pwfile); err != nil {
		return err
	}
	_ = os.RemoveAll(s.pgData()) // what a failed initdb may have left
	cmd := s.asPGUser("initdb", "-D", s.pgData(), "-U", "postgres", "--pwfile", pwfile, "--auth", "scram-sha-256",
		"-E", "UTF8", "--locale", "C.UTF-8")
	cmd.Dir = s.pgDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(s.pgData())
		return fmt.Errorf("initdb %s as %s: %w: %s", s.pgData(), pgUserName(), err, lastLines(out, 5))
	}
	return nil
}

func pgUserName() string {
	if os.Geteuid() == 0 {
		return pgUser
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "the current user"
}

// chownToPG gives a path to the PostgreSQL user (when we are root; otherwise it is ours).
func (s Stack) chownToPG(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(pgUser)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return err
	}
	// The PostgreSQL user must be able to reach its directory through every parent.
	if out, err := exec.Command("setpriv", "--reuid="+pgUser, "--regid="+pgUser, "--clear-groups", "--", "test", "-r", path).CombinedOutput(); err != nil {
		return fmt.Errorf("the PostgreSQL user %s cannot reach %s (a parent directory is not searchable by others; use a TAXFLOW_RUN_DIR it can reach): %v %s", pgUser, path, err, out)
	}
	return nil
}

// ensureUser creates a system user without home or login shell, if it does not exist.
func ensureUser(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create the system user %s that runs PostgreSQL (it refuses to run as root): %w: %s", name, err, out)
	}
	return nil
}

// psql runs one statement on a database of the stack's PostgreSQL as its superuser and
// returns the unaligned, tuples-only output.
func (s Stack) psql(ctx context.Context, db, sql string) (string, error) {
	password, err := s.secretWith("postgres.password", base64.RawURLEncoding)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, s.pgBin("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.Ports.Postgres), "-U", "postgres", "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql on %s: %w: %s", db, err, lastLines(out, 3))
	}
	return strings.TrimSpace(string(out)), nil
}

// setUpDatabases makes the role "temporal" (a normal user of the cluster, owner of its two
// databases) and the Temporal and visibility schemas with temporal-sql-tool on the first
// `up`; later ones find them at the version this server needs, or stop naming both versions.
func (s Stack) setUpDatabases(ctx context.Context) error {
	password, err := s.secretWith("temporal-db.password", base64.RawURLEncoding)
	if err != nil {
		return err
	}
	exists, err := s.psql(ctx, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'temporal'")
	if err != nil {
		return err
	}
	if exists == "0" {
		if _, err := s.psql(ctx, "postgres", fmt.Sprintf("CREATE ROLE temporal LOGIN PASSWORD '%s'", password)); err != nil {
			return err
		}
	}
	fresh := false
	for _, db := range []struct{ name, schema string }{{"temporal", "temporal"}, {"temporal_visibility", "visibility"}} {
		dir := filepath.Join(s.Tools, "temporal-schema", "postgresql", "v12", db.schema, "versioned")
		want, err := latestVersion(dir)
		if err != nil {
			return err
		}
		n, err := s.psql(ctx, "postgres", fmt.Sprintf("SELECT count(*) FROM pg_database WHERE datname = '%s'", db.name))
		if err != nil {
			return err
		}
		if n == "0" {
			if _, err := s.psql(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER temporal", db.name)); err != nil {
				return err
			}
		}
		have := ""
		if t, err := s.psql(ctx, db.name, "SELECT to_regclass('public.schema_version') IS NOT NULL"); err != nil {
			return err
		} else if t == "t" {
			if have, err = s.psql(ctx, db.name, fmt.Sprintf("SELECT curr_version FROM schema_version WHERE version_partition = 0 AND db_name = '%s'", db.name)); err != nil {
				return err
			}
		}
		switch have {
		case want:
			continue
		case "", "0.0": // new, or a first set-up that stopped half-way
			fresh = fresh || db.name == "temporal"
			if have == "" {
				if err := s.sqlTool(ctx, db.name, "setup-schema", "-v", "0.0"); err != nil {
					return err
				}
			}
			if err := s.sqlTool(ctx, db.name, "update-schema", "-d", dir); err != nil {
				return err
			}
		default:
			return fmt.Errorf("schema version mismatch: database %s has schema version %s, this Temporal server (%s) needs %s; "+
				"upgrade it with `%s --plugin postgres12 --ep 127.0.0.1 -p %d -u temporal --db %s update-schema -d %s` (SQL_PASSWORD from %s), or remove %s to start afresh",
				db.name, have, filepath.Join(s.Tools, "bin", "temporal-server"), want, filepath.Join(s.Tools, "bin", "temporal-sql-tool"),
				s.Ports.Postgres, db.name, dir, filepath.Join(s.Dir, "data", "temporal-db.password"), s.Dir)
		}
	}
	// The shard count is written into the new database when the history service first starts;
	// from now on `up` compares TAXFLOW_TEMPORAL_SHARDS with it before starting anything.
	if fresh {
		return os.WriteFile(s.shardsFile(), []byte(strconv.Itoa(s.Shards)+"\n"), 0o600)
	}
	// Temporal data without its shard count on record (a copy, a file removed by hand) cannot
	// be checked, and the server itself would not refuse another count: refuse it here.
	if _, err := os.Stat(s.shardsFile()); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the Temporal database in %s has no record of its history shard count (%s is missing): "+
			"restore that file with the count the data was made with, or remove %s to start afresh", s.Dir, s.shardsFile(), s.Dir)
	}
	return nil
}

func (s Stack) sqlTool(ctx context.Context, db string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.Tools, "bin", "temporal-sql-tool"), append([]string{"--plugin", "postgres12",
		"--ep", "127.0.0.1", "-p", strconv.Itoa(s.Ports.Postgres), "-u", "temporal", "--db", db}, args...)...)
	password, err := s.secretWith("temporal-db.password", base64.RawURLEncoding)
	if err != nil {
		return err
	}
	cmd.Env = append(os.Environ(), "SQL_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	logPath := filepath.Join(s.Dir, "logs", "temporal-schema.log")
	if f, ferr := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		_, _ = f.Write(out)
		_ = f.Close()
	}
	if err != nil {
		return fmt.Errorf("temporal-sql-tool %s on %s: %w: %s (see %s)", args[0], db, err, lastLines(out, 3), logPath)
	}
	return nil
}

// latestVersion is the highest vX.Y directory of a versioned schema directory.
func latestVersion(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	best, bm, bn := "", -1, -1
	for _, e := range entries {
		var m, n int
		if _, err := fmt.Sscanf(e.Name(), "v%d.%d", &m, &n); err != nil || !e.IsDir() {
			continue
		}
		if m > bm || (m == bm && n > bn) {
			best, bm, bn = fmt.Sprintf("%d.%d", m, n), m, n
		}
	}
	if best == "" {
		return "", fmt.Errorf("no schema versions in %s", dir)
	}
	return best, nil
}

// configureCluster sets, on every `up`, what the dev server did by itself: the namespace with
// its retention and archival off, taxflow's search attributes; then checks that the frontend
// answers a query over them and that the Web UI hands out our codec endpoint.
func (s Stack) configureCluster(ctx context.Context, report func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	opts := client.Options{HostPort: addr(s.Ports.Temporal), Namespace: Namespace, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))}
	nc, err := client.NewNamespaceClient(opts)
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        Namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(NamespaceRetention),
		HistoryArchivalState:             enumspb.ARCHIVAL_STATE_DISABLED,
		VisibilityArchivalState:          enumspb.ARCHIVAL_STATE_DISABLED,
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace %s: %w", Namespace, err)
	}
	desc, err := nc.Describe(ctx, Namespace)
	if err != nil {
		return fmt.Errorf("describe namespace %s: %w", Namespace, err)
	}
	if got := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != NamespaceRetention {
		cfg := desc.GetConfig()
		cfg.WorkflowExecutionRetentionTtl = durationpb.New(NamespaceRetention)
		if err := nc.Update(ctx, &workflowservice.UpdateNamespaceRequest{Namespace: Namespace, Config: cfg}); err != nil {
			return fmt.Errorf("set the retention of namespace %s to %s (was %s): %w", Namespace, NamespaceRetention, got, err)
		}
		report(fmt.Sprintf("namespace %s: retention set to %s (was %s)", Namespace, NamespaceRetention, got))
	}
	if h, v := desc.GetConfig().GetHistoryArchivalState(), desc.GetConfig().GetVisibilityArchivalState(); h == enumspb.ARCHIVAL_STATE_ENABLED || v == enumspb.ARCHIVAL_STATE_ENABLED {
		report(fmt.Sprintf("note: archival is enabled on namespace %s (history %s, visibility %s)", Namespace, h, v))
	}

	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: Namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	add := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			add[name] = typ
		case got != typ:
			return fmt.Errorf("search attribute %s is a %s in namespace %s, taxflow needs a %s", name, got, Namespace, typ)
		}
	}
	if len(add) > 0 {
		if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: Namespace, SearchAttributes: add}); err != nil {
			return fmt.Errorf("add search attributes: %w", err)
		}
	}
	// The frontend's namespace cache takes a few seconds to see a new namespace: wait until a
	// query over every search attribute is answered.
	var names []string
	for name := range SearchAttributes {
		names = append(names, name+" = 'check'")
	}
	for {
		_, err = c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: Namespace, PageSize: 1, Query: strings.Join(names, " AND ")})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s does not answer a query over taxflow's search attributes: %w", Namespace, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := s.checkUICodec(ctx); err != nil {
		return err
	}
	report(fmt.Sprintf("namespace %s: retention %s, archival off, search attributes %d; Web UI codec checked", Namespace, NamespaceRetention, len(SearchAttributes)))
	return nil
}

// checkUICodec asks the Web UI for its settings: the codec endpoint must be ours.
func (s Stack) checkUICodec(ctx context.Context) error {
	token, err := s.CodecToken()
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s/api/v1/settings", addr(s.Ports.TemporalUI))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the Web UI's settings: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var settings struct {
		Codec struct{ Endpoint string }
	}
	if err := json.Unmarshal(body, &settings); err != nil {
		return fmt.Errorf("the Web UI's settings at %s: %w", url, err)
	}
	if want := s.codecEndpoint(token); settings.Codec.Endpoint != want {
		return fmt.Errorf("the Web UI's codec endpoint is %q, want the stack's codec server %s", redactToken(settings.Codec.Endpoint), redactToken(want))
	}
	return nil
}

func redactToken(endpoint string) string {
	if i := strings.Index(endpoint, "/codec/"); i >= 0 {
		return endpoint[:i] + "/codec/<token>"
	}
	return endpoint
}

func tcpOpen(ctx context.Context, hostPort string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return err
	}
	return conn.Close()
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
