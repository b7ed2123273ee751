package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/taxflow/taxflow/api/codecserver"
	"github.com/taxflow/taxflow/internal/temporalclient"
)

// runCodecServer is `taxflow codec-server`: the payload codec over HTTP, for Temporal's
// Web UI and CLI.
func runCodecServer(ctx context.Context) error {
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	return serveCodec(ctx, a)
}

// serveCodec serves the codec server on TAXFLOW_CODEC_ADDR until ctx ends. `taxflow dev`
// runs it in process, where the local Web UI expects it.
func serveCodec(ctx context.Context, a *app) error {
	cd, err := temporalclient.PayloadCodec(a.cfg.Temporal)
	if err != nil {
		return err
	}
	h := codecserver.Handler(codecserver.Options{
		Codec:   cd,
		Keys:    a.keys(),
		Token:   a.cfg.Codec.Token,
		Origins: a.cfg.Codec.Origins,
		Log:     a.log.With().Str("component", "codec").Logger(),
	})
	ln, err := net.Listen("tcp", a.cfg.Codec.Addr)
	if err != nil {
		return fmt.Errorf("codec server: TAXFLOW_CODEC_ADDR=%s: %w", a.cfg.Codec.Addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	// Never the token: it is a credential.
	a.log.Info().Str("addr", "http://"+ln.Addr().String()).Strs("origins", a.cfg.Codec.Origins).
		Bool("web_ui_token", a.cfg.Codec.Token != "").Msg("codec server listening")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
