// Package lambdahost is taxflow's local Lambda host: it serves the Lambda Invoke API and
// the control calls infra apply needs (CreateFunction, UpdateFunctionCode,
// UpdateFunctionConfiguration, GetFunction, ListFunctions, DeleteFunction), and the Lambda
// Runtime API to the real function binaries, which run unchanged under lambda.Start.
//
// Each function runs in up to MaxInstances processes. An instance serves one invocation
// at a time and is reused, as on AWS. A timed-out invocation kills its instance and is
// answered as AWS answers it ("Task timed out after N.NN seconds"); an instance that dies
// is answered with Runtime.ExitError and replaced on the next invocation.
package lambdahost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Options configure a Host.
type Options struct {
	Dir          string        // where deployed code and function records are kept
	MaxInstances int           // per function; default 4
	QueueTimeout time.Duration // how long an invocation waits for a free instance; default 30s
	InitTimeout  time.Duration // how long a new instance may take to ask for work; default 10s
	Env          []string      // passed to every instance (endpoints, credentials, region)
	Region       string
	Log          zerolog.Logger
}

// Host runs functions. Create it with New, serve Handler(), and Close it to stop every instance.
type Host struct {
	opts        Options
	runtimeAddr string // host:port the instances reach the Runtime API on

	mu        sync.Mutex
	functions map[string]*function
	instances map[string]*instance // by instance id, for the Runtime API
	closed    bool
}

type function struct {
	cfg      FunctionConfig
	codePath string
	version  int            // bumped on every code or configuration change
	idle     chan *instance // instances of the current version waiting for work
	slots    chan struct{}  // one token per running instance
}

type instance struct {
	id      string
	fn      *function
	version int
	cmd     *exec.Cmd
	work    chan *invocation
	exited  chan struct{}

	mu      sync.Mutex
	pid     int
	current *invocation
}

type invocation struct {
	requestID string
	payload   []byte
	// clientContext is the caller's ClientContext, JSON (Lambda-Runtime-Client-Context).
	clientContext string
	timeout       time.Duration
	picked        chan struct{} // closed when the runtime takes it
	done          chan result   // buffered 1; the first result wins
	once          sync.Once
}

type result struct {
	payload   []byte
	errorType string // "" on success
	reuse     bool   // the runtime answered and will ask for more work
}

func (inv *invocation) finish(r result) {
	inv.once.Do(func() { inv.done <- r })
}

// New creates a host and reloads the functions deployed to it before.
func New(opts Options) (*Host, error) {
	if opts.MaxInstances <= 0 {
		opts.MaxInstances = 4
	}
	if opts.QueueTimeout <= 0 {
		opts.QueueTimeout = 30 * time.Second
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 10 * time.Second
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	h := &Host{opts: opts, functions: map[string]*function{}, instances: map[string]*instance{}}
	saved, err := loadFunctions(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("reload functions from %s: %w", opts.Dir, err)
	}
	for _, s := range saved {
		if _, err := os.Stat(s.CodePath); err == nil {
			h.functions[s.Config.FunctionName] = h.newFunction(s.Config, s.CodePath)
		}
	}
	return h, nil
}

// SetRuntimeAddr tells the host where its Runtime API listens (host:port).
func (h *Host) SetRuntimeAddr(addr string) { h.runtimeAddr = addr }

func (h *Host) newFunction(cfg FunctionConfig, codePath string) *function {
	return &function{
		cfg:      cfg,
		codePath: codePath,
		idle:     make(chan *instance, h.opts.MaxInstances),
		slots:    make(chan struct{}, h.opts.MaxInstances),
	}
}

func (h *Host) arn(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s", h.opts.Region, name)
}

// errors the API maps to AWS error types
var (
	errNotFound  = errors.New("ResourceNotFoundException")
	errConflict  = errors.New("ResourceConflictException")
	errThrottled = errors.New("TooManyRequestsException")
)

// Deploy creates (create=true) or replaces the code of a function.
func (h *Host) Deploy(cfg FunctionConfig, zipFile []byte, create bool) (FunctionConfig, error) {
	if err := validateConfig(&cfg); err != nil {
		return FunctionConfig{}, err
	}
	dir := filepath.Join(h.opts.Dir, cfg.FunctionName)
	h.mu.Lock()
	fn, exists := h.functions[cfg.FunctionName]
	h.mu.Unlock()
	if create && exists {
		return FunctionConfig{}, fmt.Errorf("%w: function already exists: %s", errConflict, cfg.FunctionName)
	}
	if !create && !exists {
		return FunctionConfig{}, fmt.Errorf("%w: function not found: %s", errNotFound, h.arn(cfg.FunctionName))
	}
	if !create {
		cfg = fn.cfg // code update keeps the configuration
	}
	path, sha, err := unpackBootstrap(zipFile, dir)
	if err != nil {
		return FunctionConfig{}, err
	}
	cfg.CodeSha256, cfg.CodeSize, cfg.LastModified = sha, int64(len(zipFile)), lastModified(time.Now())
	return h.replace(cfg, path)
}

// Configure changes a function's configuration; running instances finish their
// invocation and are then replaced, as on AWS.
func (h *Host) Configure(name string, change func(*FunctionConfig)) (FunctionConfig, error) {
	h.mu.Lock()
	fn, ok := h.functions[name]
	h.mu.Unlock()
	if !ok {
		return FunctionConfig{}, fmt.Errorf("%w: function not found: %s", errNotFound, h.arn(name))
	}
	cfg := fn.cfg
	change(&cfg)
	if err := validateConfig(&cfg); err != nil {
		return FunctionConfig{}, err
	}
	cfg.LastModified = lastModified(time.Now())
	return h.replace(cfg, fn.codePath)
}

func (h *Host) replace(cfg FunctionConfig, codePath string) (FunctionConfig, error) {
	if err := saveFunction(filepath.Join(h.opts.Dir, cfg.FunctionName), saved{Config: cfg, CodePath: codePath}); err != nil {
		return FunctionConfig{}, fmt.Errorf("save function %s: %w", cfg.FunctionName, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.functions[cfg.FunctionName]
	fn := h.newFunction(cfg, codePath)
	if old != nil {
		fn.version = old.version + 1
		h.retire(old)
	}
	h.functions[cfg.FunctionName] = fn
	return cfg, nil
}

// retire stops the idle instances of an old function version; busy ones stop when done.
func (h *Host) retire(fn *function) {
	for {
		select {
		case inst := <-fn.idle:
			inst.kill()
		default:
			return
		}
	}
}

// Get returns a function's configuration.
func (h *Host) Get(name string) (FunctionConfig, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn, ok := h.functions[name]
	if !ok {
		return FunctionConfig{}, fmt.Errorf("%w: function not found: %s", errNotFound, h.arn(name))
	}
	return fn.cfg, nil
}

// List returns every function's configuration.
func (h *Host) List() []FunctionConfig {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]FunctionConfig, 0, len(h.functions))
	for _, fn := range h.functions {
		out = append(out, fn.cfg)
	}
	return out
}

// Delete removes a function and stops its instances.
func (h *Host) Delete(name string) error {
	h.mu.Lock()
	fn, ok := h.functions[name]
	delete(h.functions, name)
	if ok {
		h.retire(fn)
	}
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: function not found: %s", errNotFound, h.arn(name))
	}
	return os.RemoveAll(filepath.Join(h.opts.Dir, name))
}

// Invoke runs one invocation and returns the function's payload and, when it failed,
// its error type ("Unhandled" errors carry errorType/errorMessage in the payload).
func (h *Host) Invoke(ctx context.Context, name string, payload []byte) (out []byte, failed bool, err error) {
	h.mu.Lock()
	fn, ok := h.functions[name]
	closed := h.closed
	h.mu.Unlock()
	if !ok || closed {
		return nil, false, fmt.Errorf("%w: function not found: %s", errNotFound, h.arn(name))
	}
	inv := &invocation{
		requestID:     uuid.NewString(),
		payload:       payload,
		timeout:       time.Duration(fn.cfg.Timeout) * time.Second,
		clientContext: clientContextOf(ctx),
		picked:        make(chan struct{}),
		done:          make(chan result, 1),
	}
	inst, err := h.acquire(ctx, fn)
	if err != nil {
		return nil, false, err
	}
	inst.mu.Lock()
	inst.current = inv
	inst.mu.Unlock()
	inst.work <- inv

	r := h.await(ctx, inst, inv)
	inst.mu.Lock()
	inst.current = nil
	inst.mu.Unlock()
	if r.reuse {
		h.release(inst) // the runtime asks for its next invocation: reuse the instance
	} else {
		inst.kill()
	}
	return r.payload, r.errorType != "", nil
}

// await waits for the runtime to answer, for the instance to die, or for the deadline.
func (h *Host) await(ctx context.Context, inst *instance, inv *invocation) result {
	initTimer := time.NewTimer(h.opts.InitTimeout)
	defer initTimer.Stop()
	select {
	case <-inv.picked:
	case r := <-inv.done:
		return r
	case <-inst.exited:
		return failure(inv.requestID, "Runtime.ExitError", "Runtime exited before taking the invocation")
	case <-initTimer.C:
		inst.kill()
		return failure(inv.requestID, "Runtime.InitError", "Runtime did not ask for work within "+h.opts.InitTimeout.String())
	case <-ctx.Done():
		inst.kill()
		return failure(inv.requestID, "Runtime.Cancelled", "Caller went away")
	}
	deadline := time.NewTimer(inv.timeout)
	defer deadline.Stop()
	select {
	case r := <-inv.done:
		return r
	case <-inst.exited:
		return failure(inv.requestID, "Runtime.ExitError", "Runtime exited during the invocation")
	case <-deadline.C:
		// AWS stops the sandbox of a timed-out invocation; so do we.
		inst.kill()
		return failure(inv.requestID, "Sandbox.Timedout",
			fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.requestID, inv.timeout.Seconds()))
	case <-ctx.Done():
		inst.kill()
		return failure(inv.requestID, "Runtime.Cancelled", "Caller went away")
	}
}

func failure(requestID, errorType, msg string) result {
	body := fmt.Sprintf(`{"errorType":%q,"errorMessage":%q}`, errorType, msg)
	return result{payload: []byte(body), errorType: errorType}
}

// acquire returns an idle instance of the function's current version, starts a new
// one when fewer than MaxInstances run, or waits for one to come free.
func (h *Host) acquire(ctx context.Context, fn *function) (*instance, error) {
	wait := time.NewTimer(h.opts.QueueTimeout)
	defer wait.Stop()
	for {
		select {
		case inst := <-fn.idle:
			if inst.alive() {
				return inst, nil
			}
			continue
		default:
		}
		select {
		case inst := <-fn.idle:
			if inst.alive() {
				return inst, nil
			}
		case fn.slots <- struct{}{}:
			inst, err := h.start(fn)
			if err != nil {
				<-fn.slots
				return nil, err
			}
			return inst, nil
		case <-wait.C:
			return nil, fmt.Errorf("%w: all %d instances of %s are busy", errThrottled, cap(fn.slots), fn.cfg.FunctionName)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release puts an instance back to work, unless its function changed meanwhile.
func (h *Host) release(inst *instance) {
	h.mu.Lock()
	cur := h.functions[inst.fn.cfg.FunctionName]
	closed := h.closed
	h.mu.Unlock()
	if closed || cur != inst.fn || !inst.alive() {
		inst.kill()
		return
	}
	select {
	case inst.fn.idle <- inst:
	default:
		inst.kill()
	}
}

func (h *Host) start(fn *function) (*instance, error) {
	inst := &instance{
		id:      uuid.NewString(),
		fn:      fn,
		version: fn.version,
		work:    make(chan *invocation, 1),
		exited:  make(chan struct{}),
	}
	cmd := exec.Command(fn.codePath)
	cmd.Dir = filepath.Dir(fn.codePath)
	env := append([]string{}, h.opts.Env...)
	for k, v := range fn.cfg.Environment {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+h.runtimeAddr+"/i/"+inst.id,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.cfg.FunctionName,
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", fn.cfg.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_REGION="+h.opts.Region,
		"AWS_DEFAULT_REGION="+h.opts.Region,
		"_HANDLER="+fn.cfg.Handler,
		"LAMBDA_TASK_ROOT="+cmd.Dir,
	)
	cmd.Env = env
	// Own process group, killed with the host: no instance outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	h.mu.Lock()
	h.instances[inst.id] = inst
	h.mu.Unlock()
	inst.cmd = cmd
	if err := cmd.Start(); err != nil {
		h.forget(inst)
		return nil, fmt.Errorf("start %s: %w", fn.cfg.FunctionName, err)
	}
	inst.mu.Lock()
	inst.pid = cmd.Process.Pid
	inst.mu.Unlock()
	log := h.opts.Log.With().Str("function", fn.cfg.FunctionName).Str("instance", inst.id[:8]).Logger()
	go pipeLog(stdout, log)
	go func() {
		err := cmd.Wait()
		close(inst.exited)
		h.forget(inst)
		<-fn.slots
		log.Debug().AnErr("exit", err).Msg("instance stopped")
	}()
	log.Debug().Msg("instance started")
	return inst, nil
}

func (h *Host) forget(inst *instance) {
	h.mu.Lock()
	delete(h.instances, inst.id)
	h.mu.Unlock()
}

func pipeLog(r io.Reader, log zerolog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		log.Info().Msg(sc.Text())
	}
}

func (inst *instance) alive() bool {
	select {
	case <-inst.exited:
		return false
	default:
		return true
	}
}

func (inst *instance) kill() {
	inst.mu.Lock()
	pid := inst.pid
	inst.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// Close stops every instance and refuses further invocations.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	insts := make([]*instance, 0, len(h.instances))
	for _, inst := range h.instances {
		insts = append(insts, inst)
	}
	h.mu.Unlock()
	for _, inst := range insts {
		inst.kill()
		<-inst.exited
	}
}
