package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/lambdahost"
	"github.com/taxflow/taxflow/internal/logging"
	"github.com/taxflow/taxflow/internal/stack"
)

func localStack() (stack.Stack, error) {
	self, err := os.Executable()
	if err != nil {
		return stack.Stack{}, err
	}
	return stack.FromEnv(os.Getenv, self)
}

func runStack(ctx context.Context, args []string) error {
	const usage = "usage: taxflow stack up [--temporal dev|server] | down | status | env"
	if len(args) == 0 {
		return errors.New(usage)
	}
	s, err := localStack()
	if err != nil {
		return err
	}
	// --temporal (or TAXFLOW_TEMPORAL) chooses the Temporal back end of `up`: the dev server
	// (the default) or a cluster on PostgreSQL. down, status and env use the one the run
	// directory was last started with.
	fs := flag.NewFlagSet("stack "+args[0], flag.ContinueOnError)
	temporal := fs.String("temporal", s.Temporal, "Temporal back end: dev (the dev server) or server (a cluster on PostgreSQL)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || (args[0] != "up" && len(args) > 1) {
		return errors.New(usage)
	}
	if err := s.SetTemporal(*temporal); err != nil {
		return err
	}
	say := func(line string) { fmt.Println(line) }
	switch args[0] {
	case "up":
		if err := s.Up(ctx, say); err != nil {
			return err
		}
		fmt.Printf("logs and data in %s\n", s.Dir)
		return nil
	case "down":
		return s.Down(say)
	case "status":
		st := s.Status()
		names := make([]string, 0, len(st))
		for name := range st {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Printf("%-17s %v\n", name, map[bool]string{true: "running", false: "stopped"}[st[name]])
		}
		return nil
	case "env":
		for _, kv := range s.Env() {
			fmt.Println("export " + kv)
		}
		return nil
	}
	return fmt.Errorf("unknown stack command %q", args[0])
}

func runLambdaHost(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lambda-host", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9009", "listen address (host:port)")
	dir := fs.String("dir", ".run/dev/data/lambda", "where deployed functions are kept")
	max := fs.Int("max-instances", 4, "instances per function")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	// Functions get the AWS endpoints and credentials of the host's environment.
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "TAXFLOW_LOG") {
			env = append(env, kv)
		}
	}
	h, err := lambdahost.New(lambdahost.Options{Dir: *dir, MaxInstances: *max, Env: env, Region: cfg.AWS.Region, Log: log})
	if err != nil {
		return err
	}
	defer h.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("lambda host: %w", err)
	}
	h.SetRuntimeAddr(ln.Addr().String())
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("Lambda host listening")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
