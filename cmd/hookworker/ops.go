package main

import (
	"context"
	"fmt"
	"net"
	"sync"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/ops"
)

// opsConfig is the ops page's configuration from the environment.
func (c Config) opsConfig() ops.Config {
	return ops.Config{Addr: c.OpsAddr, Token: c.OpsToken, User: c.OpsUser, Password: c.OpsPassword}
}

// startOps serves the ops page on ln (bound to HOOKWORKER_OPS_ADDR) until
// ctx ends. In a sandbox mode every page carries a banner saying so.
func startOps(ctx context.Context, wg *sync.WaitGroup, cfg Config, w *worker.Worker, ln net.Listener, sandboxMode string, log *zap.Logger, errc chan<- error) error {
	oc := cfg.opsConfig()
	if sandboxMode != "" {
		oc.Banner = "Sandbox mode (" + sandboxMode + "): no catalog is loaded (HOOKWORKER_CATALOG is empty), so every event is provisioned at the sandbox, never at a real provider."
	}
	srv, err := ops.New(oc, w.JetStream(), w, log)
	if err != nil {
		return configError{err}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("HOOKWORKER_OPS_ADDR: %w", err)
		}
	}()
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("setting", "HOOKWORKER_OPS_ADDR"))
	return nil
}
