package main

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/ops"
)

// opsConfig is the ops page's configuration from the environment.
func (c Config) opsConfig() ops.Config {
	return ops.Config{Addr: c.OpsAddr, Token: c.OpsToken, User: c.OpsUser, Password: c.OpsPassword}
}

// startOps serves the ops page on HOOKWORKER_OPS_ADDR (empty: off) until
// ctx ends.
func startOps(ctx context.Context, wg *sync.WaitGroup, cfg Config, w *worker.Worker, log *zap.Logger, errc chan<- error) error {
	if cfg.OpsAddr == "" {
		return nil
	}
	srv, err := ops.New(cfg.opsConfig(), w.JetStream(), w, log)
	if err != nil {
		return configError{err}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.ListenAndServe(ctx); err != nil && ctx.Err() == nil {
			errc <- err
		}
	}()
	return nil
}
