// Package stack starts and stops the Docker-less local stack: the Temporal dev server (or,
// with TAXFLOW_TEMPORAL=server, a Temporal cluster on PostgreSQL: see cluster.go),
// DynamoDB Local, MinIO (S3) and taxflow's local Lambda host. Each runs as its own
// process group in the background, with logs and data under the run directory, so that
// `taxflow stack up` can return and `taxflow stack down` can stop them later.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// Local credentials of the stack. They protect nothing but a loopback-only test stack.
// Letters and digits only: DynamoDB Local refuses any other access key id.
const (
	AccessKey = "taxflowlocal"
	SecretKey = "taxflowlocalsecret"
)

// Ports of the stack, each configurable through its TAXFLOW_*_PORT variable. Codec is
// where the Web UI expects the codec server (`taxflow codec-server`, or `taxflow dev`).
// Postgres and TemporalCluster (the first of the eight ports of the Temporal services other
// than the frontend's gRPC port, which stays Temporal) serve the cluster only.
type Ports struct {
	Temporal, TemporalUI, DynamoDB, S3, S3Console, Lambda, Codec int
	Postgres, TemporalCluster                                    int
}

// Stack describes one local stack: where its tools, data and logs are, and its ports.
type Stack struct {
	Tools string // installed tools (make setup)
	Dir   string // run directory: pids, logs, data
	Self  string // the taxflow binary, which runs the Lambda host
	Ports Ports
	// Temporal is the Temporal back end: TemporalDev ("" too) or TemporalServer.
	Temporal    string
	Shards      int    // the cluster's history shards
	PostgresBin string // PostgreSQL's bin directory (the cluster's database)
}

// FromEnv reads TAXFLOW_TOOLS, TAXFLOW_RUN_DIR, the TAXFLOW_*_PORT variables and the
// cluster's TAXFLOW_TEMPORAL (dev or server; unset: the cluster if one is up in the run
// directory, else dev), TAXFLOW_TEMPORAL_SHARDS and TAXFLOW_POSTGRES_BIN.
func FromEnv(getenv func(string) string, self string) (Stack, error) {
	s := Stack{
		Tools:       or(getenv("TAXFLOW_TOOLS"), ".tools"),
		Dir:         or(getenv("TAXFLOW_RUN_DIR"), ".run/dev"),
		Self:        self,
		Temporal:    getenv("TAXFLOW_TEMPORAL"),
		PostgresBin: or(getenv("TAXFLOW_POSTGRES_BIN"), "/usr/lib/postgresql/15/bin"),
		Shards:      DefaultShards,
	}
	var errs []string
	if v := getenv("TAXFLOW_TEMPORAL_SHARDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16384 {
			errs = append(errs, fmt.Sprintf("TAXFLOW_TEMPORAL_SHARDS=%q must be a number 1-16384", v))
		}
		s.Shards = n
	}
	port := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Sprintf("%s=%q must be a port number 1-65535", name, v))
			return def
		}
		return n
	}
	s.Ports = Ports{
		Temporal:   port("TAXFLOW_TEMPORAL_PORT", 7233),
		TemporalUI: port("TAXFLOW_TEMPORAL_UI_PORT", 8233),
		DynamoDB:   port("TAXFLOW_DYNAMODB_PORT", 8000),
		S3:         port("TAXFLOW_S3_PORT", 9000),
		S3Console:  port("TAXFLOW_S3_CONSOLE_PORT", 9001),
		Lambda:     port("TAXFLOW_LAMBDA_PORT", 9009),
		Codec:      port("TAXFLOW_CODEC_PORT", 8089),
		Postgres:   port("TAXFLOW_POSTGRES_PORT", 5433),
		// 7234-7241: next to the frontend's 7233, as a Temporal server lays them out.
		TemporalCluster: port("TAXFLOW_TEMPORAL_CLUSTER_PORT", 7234),
	}
	if s.Ports.TemporalCluster > 65535-7 {
		errs = append(errs, fmt.Sprintf("TAXFLOW_TEMPORAL_CLUSTER_PORT=%d must leave room for the 7 ports after it", s.Ports.TemporalCluster))
	}
	if len(errs) > 0 {
		return Stack{}, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	var err error
	if s.Tools, err = filepath.Abs(s.Tools); err != nil {
		return Stack{}, err
	}
	if s.Dir, err = filepath.Abs(s.Dir); err != nil {
		return Stack{}, err
	}
	if s.Temporal == "" && s.recordedTemporal() == TemporalServer {
		// A cluster that is up is the stack of this run directory until it is stopped; once
		// stopped, the dev server is the default again.
		s.Temporal = TemporalServer
		if !slices.Contains(slices.Collect(maps.Values(s.Status())), true) {
			s.Temporal = TemporalDev
		}
	}
	if err := s.SetTemporal(s.Temporal); err != nil {
		return Stack{}, err
	}
	return s, nil
}

// SetTemporal chooses the Temporal back end ("" is the dev server).
func (s *Stack) SetTemporal(t string) error {
	switch t {
	case "", TemporalDev:
		s.Temporal = TemporalDev
	case TemporalServer:
		s.Temporal = TemporalServer
	default:
		return fmt.Errorf("TAXFLOW_TEMPORAL (or --temporal) %q must be %s (the dev server) or %s (a Temporal cluster on PostgreSQL)", t, TemporalDev, TemporalServer)
	}
	return nil
}

// recordedTemporal is the back end the run directory's stack was last started with, so
// `stack down`, `status` and `env` need no flag.
func (s Stack) recordedTemporal() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "temporal.mode"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (s Stack) server() bool { return s.Temporal == TemporalServer }

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Env is the environment that points taxflow (and the AWS CLI or SDKs) at this stack,
// with the stack's own payload key and subject key (two secrets: rotating one changes
// nothing keyed by the other) and the codec server's address, token and endpoint
// (for `temporal workflow show --codec-endpoint "$TAXFLOW_CODEC_ENDPOINT"`).
func (s Stack) Env() []string {
	key, _ := s.secret("payload.key")
	subjectKey, _ := s.secret("subject.key")
	token, _ := s.CodecToken()
	ui := strconv.Itoa(s.Ports.TemporalUI)
	return []string{
		"TAXFLOW_PAYLOAD_KEY=" + key,
		"TAXFLOW_SUBJECT_KEY=v1:" + subjectKey,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3=http://" + addr(s.Ports.S3),
		"AWS_ENDPOINT_URL_DYNAMODB=http://" + addr(s.Ports.DynamoDB),
		"AWS_ENDPOINT_URL_LAMBDA=http://" + addr(s.Ports.Lambda),
		"TEMPORAL_ADDRESS=" + addr(s.Ports.Temporal),
		"TEMPORAL_NAMESPACE=default",
		"TAXFLOW_INTAKE_NOTIFY_ARN=" + IntakeNotifyARN,
		"TAXFLOW_CODEC_ADDR=" + addr(s.Ports.Codec),
		"TAXFLOW_CODEC_TOKEN=" + token,
		"TAXFLOW_CODEC_ORIGINS=http://127.0.0.1:" + ui + ",http://localhost:" + ui,
		"TAXFLOW_CODEC_ENDPOINT=" + s.codecEndpoint(token),
		// Receivers of webhooks on this machine (a test's, the demo's) are plain http.
		"TAXFLOW_WEBHOOK_ALLOW_LOOPBACK=true",
	}
}

// CodecToken returns the local Web UI's codec credential: 32 random bytes, URL-safe
// (it is a path segment of the UI's codec endpoint), made once per run directory and
// readable by its owner only.
func (s Stack) CodecToken() (string, error) {
	return s.secretWith("codec.token", base64.RawURLEncoding)
}

// codecEndpoint is the codec server's URL with the token: the Web UI and the Temporal
// CLI append /decode or /encode to it.
func (s Stack) codecEndpoint(token string) string {
	return "http://" + addr(s.Ports.Codec) + "/codec/" + token
}

// service is one process of the stack.
type service struct {
	name    string
	ports   []int
	command func() (*exec.Cmd, error)
	healthy func(ctx context.Context) error
	where   string
	// prepare, if set, runs before the service starts, once every service listed before it
	// is healthy (the cluster's database before its schemas, its schemas before Temporal).
	prepare func(ctx context.Context) error
}

func (s Stack) services() []service {
	tools := func(p ...string) string { return filepath.Join(append([]string{s.Tools}, p...)...) }
	data := func(p string) string { return filepath.Join(s.Dir, "data", p) }
	var temporal []service
	if s.server() {
		temporal = s.clusterServices()
	} else {
		temporal = []service{s.devServer()}
	}
	return append(temporal, []service{
		{
			name:  "dynamodb",
			ports: []int{s.Ports.DynamoDB},
			where: "DynamoDB Local http://" + addr(s.Ports.DynamoDB),
			command: func() (*exec.Cmd, error) {
				dir := tools("dynamodb")
				cmd := exec.Command("java", "-Xmx1g", "-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
					"-cp", dir+"/DynamoDBLocal.jar:"+dir+"/DynamoDBLocal_lib/*:"+dir,
					"LoopbackDynamoDB", "127.0.0.1", "-sharedDb", "-disableTelemetry",
					"-dbPath", data("dynamodb"), "-port", strconv.Itoa(s.Ports.DynamoDB))
				// It writes dynamodb-local-metadata.json into its working directory.
				cmd.Dir = data("dynamodb")
				return cmd, os.MkdirAll(data("dynamodb"), 0o755)
			},
			healthy: func(ctx context.Context) error {
				// Any answer from DynamoDB (even "missing authentication") means it is up.
				return httpAnswers(ctx, "http://"+addr(s.Ports.DynamoDB)+"/")
			},
		},
		{
			name:  "s3",
			ports: []int{s.Ports.S3, s.Ports.S3Console},
			where: fmt.Sprintf("MinIO S3 http://%s, console http://%s", addr(s.Ports.S3), addr(s.Ports.S3Console)),
			command: func() (*exec.Cmd, error) {
				key, err := s.kmsKey()
				if err != nil {
					return nil, err
				}
				cmd := exec.Command(tools("bin", "minio"), "server", "--quiet", "--json",
					"--address", addr(s.Ports.S3), "--console-address", addr(s.Ports.S3Console), data("s3"))
				cmd.Env = append(os.Environ(),
					"MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
					"MINIO_KMS_SECRET_KEY=taxflow-local:"+key, "MINIO_UPDATE=off", "MINIO_BROWSER=on")
				// The inbox's object-created events go to the intake function through the
				// Lambda host's Invoke API, as S3 invokes it on AWS; the queue directory keeps
				// events while the host or the function is not up yet, and retries them.
				cmd.Env = append(cmd.Env, "MINIO_NOTIFY_WEBHOOK_ENABLE_INTAKE=on",
					"MINIO_NOTIFY_WEBHOOK_ENDPOINT_INTAKE=http://"+addr(s.Ports.Lambda)+"/2015-03-31/functions/"+s.prefix()+"-intake/invocations",
					"MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_INTAKE="+data("s3-events"))
				return cmd, os.MkdirAll(data("s3-events"), 0o700)
			},
			healthy: func(ctx context.Context) error {
				return httpOK(ctx, "http://"+addr(s.Ports.S3)+"/minio/health/live")
			},
		},
		{
			name:  "lambda",
			ports: []int{s.Ports.Lambda},
			where: "Lambda host http://" + addr(s.Ports.Lambda),
			command: func() (*exec.Cmd, error) {
				cmd := exec.Command(s.Self, "lambda-host", "--addr", addr(s.Ports.Lambda), "--dir", data("lambda"))
				cmd.Env = append(os.Environ(), s.Env()...)
				return cmd, nil
			},
			healthy: func(ctx context.Context) error {
				return httpOK(ctx, "http://"+addr(s.Ports.Lambda)+"/health")
			},
		},
	}...)
}

// devServer is the Temporal dev server: one process, SQLite, the default back end.
func (s Stack) devServer() service {
	tools := func(p ...string) string { return filepath.Join(append([]string{s.Tools}, p...)...) }
	data := func(p string) string { return filepath.Join(s.Dir, "data", p) }
	return service{
		name:  "temporal",
		ports: []int{s.Ports.Temporal, s.Ports.TemporalUI},
		where: fmt.Sprintf("Temporal %s, Web UI http://%s (payloads decoded by the codec server at http://%s)",
			addr(s.Ports.Temporal), addr(s.Ports.TemporalUI), addr(s.Ports.Codec)),
		command: func() (*exec.Cmd, error) {
			token, err := s.CodecToken()
			if err != nil {
				return nil, fmt.Errorf("codec token: %w", err)
			}
			return exec.Command(tools("bin", "temporal"), "server", "start-dev",
				"--ip", "127.0.0.1", "--port", strconv.Itoa(s.Ports.Temporal),
				"--ui-ip", "127.0.0.1", "--ui-port", strconv.Itoa(s.Ports.TemporalUI),
				"--ui-codec-endpoint", s.codecEndpoint(token),
				"--db-filename", data("temporal.db"), "--namespace", "default",
				// WAL: a commit appends to the log instead of rewriting the journal, and
				// NORMAL syncs at checkpoints; a killed server loses nothing committed (only a
				// power cut could lose the last commits). Measured: 11.5 → 21.6 cases/s loaded
				// by `taxflow bench --open` on two cores (docs/performance.md).
				"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
				"--log-format", "json", "--log-level", "warn",
				"--search-attribute", "TaxflowProcess=Keyword",
				"--search-attribute", "TaxflowStatus=Keyword",
				"--search-attribute", "TaxflowSubject=Keyword",
			), nil
		},
		healthy: func(ctx context.Context) error {
			if err := temporalHealthy(ctx, addr(s.Ports.Temporal)); err != nil {
				return err
			}
			return httpOK(ctx, fmt.Sprintf("http://%s/", addr(s.Ports.TemporalUI)))
		},
	}
}

// IntakeNotifyARN is MinIO's name of the webhook target the stack configures for the
// intake function.
const IntakeNotifyARN = "arn:minio:sqs::INTAKE:webhook"

// prefix is the resource prefix the stack's functions are deployed under.
func (s Stack) prefix() string {
	if p := os.Getenv("TAXFLOW_PREFIX"); p != "" {
		return p
	}
	return "taxflow"
}

// kmsKey returns this stack's MinIO KMS key (32 random bytes, base64), made once.
func (s Stack) kmsKey() (string, error) { return s.secret("minio-kms.key") }

// secret returns a key of this stack (32 random bytes, base64), made once and kept in
// its data directory.
func (s Stack) secret(name string) (string, error) { return s.secretWith(name, base64.StdEncoding) }

func (s Stack) secretWith(name string, encoding *base64.Encoding) (string, error) {
	path := filepath.Join(s.Dir, "data", name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	enc := encoding.EncodeToString(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return enc, os.WriteFile(path, []byte(enc), 0o600)
}

// Check tells what is missing from the tools folder, in one sentence per tool.
func (s Stack) Check() error {
	var missing []string
	need := []string{"bin/minio", "dynamodb/DynamoDBLocal.jar", "dynamodb/LoopbackDynamoDB.class"}
	if !s.server() {
		need = append([]string{"bin/temporal"}, need...)
	}
	for _, p := range need {
		if _, err := os.Stat(filepath.Join(s.Tools, p)); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tools missing in %s (%s): run `make setup`", s.Tools, strings.Join(missing, ", "))
	}
	if _, err := exec.LookPath("java"); err != nil {
		return errors.New("java is not installed: install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)")
	}
	if s.server() {
		return s.checkCluster()
	}
	return nil
}

// Up starts every service that is not running yet and waits until each answers.
// Running it twice is harmless. A port held by another program is an error naming the
// port and its variable, found before anything starts; when a start fails later, the
// services this call started are stopped again, so nothing half-started is left.
func (s Stack) Up(ctx context.Context, report func(string)) (err error) {
	if err := s.Check(); err != nil {
		return err
	}
	// One back end per run directory at a time: the other's processes would hold its ports.
	if was := s.recordedTemporal(); was != "" && was != s.Temporal {
		other := s
		other.Temporal = was
		for name, up := range other.Status() {
			if up {
				return fmt.Errorf("the stack in %s runs with the Temporal %s back end (%s is up): stop it with `taxflow stack down` before starting it with %s",
					s.Dir, was, name, s.Temporal)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "logs"), 0o755); err != nil {
		return err
	}
	var toStart []service
	for _, svc := range s.services() {
		if pid, ok := s.running(svc.name); ok {
			report(fmt.Sprintf("%-*s already running (pid %d): %s", s.nameWidth(), svc.name, pid, svc.where))
			continue
		}
		toStart = append(toStart, svc)
	}
	for _, svc := range toStart {
		for _, p := range svc.ports {
			if err := portFree(p); err != nil {
				return fmt.Errorf("start %s: port %d (%s) is already in use by another program: set %s to a free port or stop that program (%v)",
					svc.name, p, s.portVar(p), s.portVar(p), err)
			}
		}
	}
	var started []string
	defer func() {
		if err == nil || len(started) == 0 {
			return
		}
		for i := len(started) - 1; i >= 0; i-- {
			if serr := s.stop(started[i]); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		err = fmt.Errorf("%w (stopped what this start had started: %s)", err, strings.Join(started, ", "))
	}()
	if err := os.WriteFile(filepath.Join(s.Dir, "temporal.mode"), []byte(s.Temporal+"\n"), 0o644); err != nil {
		return err
	}
	if s.server() {
		// The cluster's configuration, rendered on every up: it follows the ports of this run.
		if err := s.renderClusterConfig(); err != nil {
			return err
		}
	}
	all := s.services()
	healthy := 0 // all[:healthy] answered
	waitUpTo := func(n int) error {
		for ; healthy < n; healthy++ {
			if err := s.waitHealthy(ctx, all[healthy]); err != nil {
				return err
			}
			report(fmt.Sprintf("%-*s up: %s", s.nameWidth(), all[healthy].name, all[healthy].where))
		}
		return nil
	}
	for _, svc := range toStart {
		if svc.prepare != nil {
			if err := waitUpTo(slices.IndexFunc(all, func(o service) bool { return o.name == svc.name })); err != nil {
				return err
			}
			if err := svc.prepare(ctx); err != nil {
				return fmt.Errorf("prepare %s: %w", svc.name, err)
			}
		}
		if err := s.start(svc); err != nil {
			return fmt.Errorf("start %s: %w", svc.name, err)
		}
		started = append(started, svc.name)
	}
	if err := waitUpTo(len(all)); err != nil {
		return err
	}
	if s.server() {
		return s.configureCluster(ctx, report)
	}
	return nil
}

// nameWidth aligns the lines Up and Down print.
func (s Stack) nameWidth() int {
	if s.server() {
		return len("temporal-frontend")
	}
	return 8
}

// portVar names the variable that sets a port of the stack.
func (s Stack) portVar(port int) string {
	for _, pv := range []struct {
		port int
		name string
	}{{s.Ports.Temporal, "TAXFLOW_TEMPORAL_PORT"}, {s.Ports.TemporalUI, "TAXFLOW_TEMPORAL_UI_PORT"}, {s.Ports.DynamoDB, "TAXFLOW_DYNAMODB_PORT"},
		{s.Ports.S3, "TAXFLOW_S3_PORT"}, {s.Ports.S3Console, "TAXFLOW_S3_CONSOLE_PORT"}, {s.Ports.Lambda, "TAXFLOW_LAMBDA_PORT"},
		{s.Ports.Postgres, "TAXFLOW_POSTGRES_PORT"}} {
		if pv.port == port {
			return pv.name
		}
	}
	if s.server() && port >= s.Ports.TemporalCluster && port < s.Ports.TemporalCluster+8 {
		return "TAXFLOW_TEMPORAL_CLUSTER_PORT" // the first of eight in a row
	}
	return "its TAXFLOW_*_PORT"
}

// command builds a service's process. It runs inside the run directory, so whatever a
// tool writes into its working directory stays there, never in the repository.
func (s Stack) command(svc service) (*exec.Cmd, error) {
	cmd, err := svc.command()
	if err != nil {
		return nil, err
	}
	if cmd.Dir == "" {
		cmd.Dir = s.Dir
	}
	return cmd, os.MkdirAll(cmd.Dir, 0o755)
}

func (s Stack) start(svc service) (err error) {
	cmd, err := s.command(svc)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "logs", svc.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The child gets its own descriptor at Start; ours is closed once it is started (or not).
	defer func() {
		if cerr := logf.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the %s log: %w", svc.name, cerr))
		}
	}()
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: it outlives `stack up`, and `stack down` stops the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o755); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while we wait
	return os.WriteFile(s.pidFile(svc.name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

func (s Stack) waitHealthy(ctx context.Context, svc service) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var last error
	for {
		if _, ok := s.running(svc.name); !ok {
			return fmt.Errorf("%s exited during start; see %s", svc.name, filepath.Join(s.Dir, "logs", svc.name+".log"))
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = svc.healthy(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become healthy (%v); see %s", svc.name, last, filepath.Join(s.Dir, "logs", svc.name+".log"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down stops every service of the stack, politely first, and waits until each is gone.
func (s Stack) Down(report func(string)) error {
	var errs []error
	svcs := s.services()
	for i := len(svcs) - 1; i >= 0; i-- {
		name := svcs[i].name
		if _, ok := s.running(name); !ok {
			_ = os.Remove(s.pidFile(name))
			continue
		}
		if err := s.stop(name); err != nil {
			errs = append(errs, err)
			continue
		}
		report(fmt.Sprintf("%-*s stopped", s.nameWidth(), name))
	}
	return errors.Join(errs...)
}

// Stop stops one service (temporal, dynamodb, s3, lambda; on the cluster postgres and
// temporal-history, -matching, -frontend, -worker) and waits until it is gone;
// Up starts it again. The fault tests stop a store this way in the middle of a run.
// DynamoDB Local keeps its tables on disk (-dbPath), so they survive.
func (s Stack) Stop(name string) error {
	for _, svc := range s.services() {
		if svc.name == name {
			return s.stop(name)
		}
	}
	return fmt.Errorf("no service %q in the stack", name)
}

// Kill ends one service at once, as a crash would: SIGKILL to its process group, no
// shutdown of its own. Up starts it again. The cluster's fault test kills the Temporal
// history service this way in the middle of a run.
func (s Stack) Kill(name string) error {
	if !slices.ContainsFunc(s.services(), func(svc service) bool { return svc.name == name }) {
		return fmt.Errorf("no service %q in the stack", name)
	}
	pid, ok := s.running(name)
	if !ok {
		return fmt.Errorf("%s is not running", name)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		return fmt.Errorf("%s (pid %d) did not die of SIGKILL", name, pid)
	}
	return nil
}

// stop ends one service's process group: SIGTERM, then SIGKILL after 15 s.
func (s Stack) stop(name string) error {
	pid, ok := s.running(name)
	if !ok {
		_ = os.Remove(s.pidFile(name))
		return nil
	}
	if name == "postgres" {
		// Its postmaster alone, with SIGINT: a fast shutdown that ends the sessions and
		// checkpoints; PostgreSQL's own processes are not to be signalled one by one.
		_ = syscall.Kill(pid, syscall.SIGINT)
	} else {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
	if alive(pid) {
		return fmt.Errorf("%s (pid %d) did not stop", name, pid)
	}
	_ = os.Remove(s.pidFile(name))
	return nil
}

// Status reports each service as running or stopped.
func (s Stack) Status() map[string]bool {
	out := map[string]bool{}
	for _, svc := range s.services() {
		_, ok := s.running(svc.name)
		out[svc.name] = ok
	}
	return out
}

func (s Stack) pidFile(name string) string { return filepath.Join(s.Dir, name+".pid") }

func (s Stack) running(name string) (int, bool) {
	b, err := os.ReadFile(s.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(pid) {
		return 0, false
	}
	return pid, true
}

// alive tells whether a process exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// state is the field after the parenthesised command name
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

func portFree(port int) error {
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		return err
	}
	return l.Close()
}

func httpOK(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close() // only the status is needed
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

func httpAnswers(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close() // only that it answered is needed
	return nil
}

// temporalHealthy asks the frontend's health check, not just whether the port is open.
func temporalHealthy(ctx context.Context, hostPort string) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
