package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/whmcs"
)

const defaultProviderTimeout = 30 * time.Second

func newLogger(cfg Config, w io.Writer) *zap.Logger {
	level, _ := zapcore.ParseLevel(cfg.LogLevel)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}

// cmdRun runs the worker until SIGINT or SIGTERM, then shuts down
// gracefully and returns nil.
func cmdRun(ctx context.Context, cfg Config, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()
	limit, setBy, err := cfg.applyMemoryLimit(os.Getenv("GOMEMLIMIT"))
	if err != nil {
		return configError{err}
	}
	log.Info("memory limit", zap.String("memory_limit", formatBytes(limit)), zap.String("set_by", setBy))
	if cfg.followsLiveHeap(os.Getenv("GOMEMLIMIT")) {
		go followLiveHeap(ctx, limit, log)
	}

	// Service passwords: the one WHMCS holds when its API is configured,
	// else (and for ClientAdd reseller signups, which have no service) one
	// derived from HOOKWORKER_PASSWORD_SECRET.
	secret, err := cfg.passwordSecret()
	if err != nil {
		return configError{err}
	}
	derived, err := providers.NewDerivedPasswords(secret)
	if err != nil {
		return configError{fmt.Errorf("HOOKWORKER_PASSWORD_SECRET: %w", err)}
	}
	var passwords passwordSource = derived
	var wb *whmcs.Client
	if cfg.WHMCS.Enabled() {
		if wb, err = whmcs.NewClient(cfg.WHMCS); err != nil {
			return configError{err}
		}
		passwords = whmcs.FallbackPasswords(wb, derived)
	}
	if err := cfg.requireCatalog(); err != nil {
		return configError{err}
	}
	set, err := buildProviders(cfg, passwords, log)
	if err != nil {
		return err
	}
	defer set.close()
	sandboxMode := cfg.sandboxMode()
	if sandboxMode != "" {
		where := "the in-process sandbox provider (accounts in memory)"
		if sandboxMode == "fakes" {
			where = "in-process fake Comet, CodeGuard and StoreGrid servers"
		}
		log.Warn("SANDBOX MODE: no catalog (HOOKWORKER_CATALOG is empty), so every event is provisioned at "+where+
			", never at a real provider", zap.String("sandbox", sandboxMode))
	} else if cfg.Sandbox != "" {
		log.Warn("HOOKWORKER_SANDBOX is ignored: HOOKWORKER_CATALOG is set", zap.String("catalog", cfg.Catalog))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookworker_build_info",
		Help: "Always 1; the version label says which build runs, sandbox which sandbox it provisions at (memory, fakes; empty with a catalog)."},
		[]string{"version", "sandbox"})
	buildInfo.WithLabelValues(buildVersion(), sandboxMode).Set(1)
	reg.MustRegister(buildInfo)
	metrics := worker.NewMetrics(reg)

	var wg sync.WaitGroup
	defer wg.Wait() // after stopAll, deferred below
	errc := make(chan error, 4)
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	// Both listeners are bound before anything else, so that a busy port is
	// a configuration error (exit 2) before any event is consumed, and
	// /readyz answers 503 while NATS is still out of reach.
	ready := &readiness{}
	ready.starting("connecting to NATS")
	if cfg.MetricsAddr != "" {
		srv := &http.Server{Handler: healthMux(reg, ready), ReadHeaderTimeout: 5 * time.Second}
		if err := serve(runCtx, &wg, srv, cfg.MetricsAddr, "HOOKWORKER_METRICS_ADDR", log, errc); err != nil {
			return err
		}
	}
	var opsLn net.Listener
	if cfg.OpsAddr != "" {
		if opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			return configError{fmt.Errorf("HOOKWORKER_OPS_ADDR: cannot listen on %s: %w", cfg.OpsAddr, err)}
		}
		defer opsLn.Close()
	}

	b, err := cfg.connectWaiting(runCtx, log, ready)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped before NATS was reachable")
			return nil
		}
		return err
	}
	defer b.close()

	w, err := worker.New(b.js, set.catalog, set.providers, cfg.Options, log, metrics)
	if err != nil {
		return configError{err}
	}
	// JetStream may answer late (a cluster still forming, a server
	// restarting): keep trying, logging each try, until it does or we are
	// stopped.
	ready.starting("setting up streams")
	setup := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(15*time.Second), backoff.WithMaxElapsedTime(0)), ctx)
	attempt := 0
	err = backoff.RetryNotify(func() error {
		attempt++
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return w.Setup(sctx)
	}, setup, func(err error, d time.Duration) {
		ready.starting(fmt.Sprintf("setting up streams (attempt %d failed: %v)", attempt, err))
		log.Warn("setting up streams failed; retrying", zap.Int("attempt", attempt), zap.Duration("in", d), zap.Error(err))
	})
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped before the streams were set up")
			return nil
		}
		return fmt.Errorf("set up streams on NATS: %w", err)
	}
	ready.use(w)
	log.Info("catalog loaded", zap.Int("products", len(set.catalog.Products())), zap.Strings("providers", w.Providers()))

	if opsLn != nil {
		if err := startOps(runCtx, &wg, cfg, w, opsLn, sandboxMode, log, errc); err != nil {
			return err
		}
	}
	rpc, err := w.StartRPC(runCtx, b.nc, reg) // status, providers check, WHMCS module requests
	if err != nil {
		return err
	}
	defer rpc.Stop()
	if wb != nil {
		kv := w.Records() // write-back records share the idempotency bucket, under their own keys
		wm, err := whmcs.NewMetrics(reg)
		if err != nil {
			return err
		}
		writer := whmcs.NewWriter(wb, kv, log.Named("writeback")).WithMetrics(wm)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := whmcs.Run(runCtx, b.js, worker.ResultsStream, writer, cfg.WHMCS, log.Named("writeback")); err != nil && runCtx.Err() == nil {
				errc <- fmt.Errorf("WHMCS write-back: %w", err)
			}
		}()
		log.Info("WHMCS write-back on")
	}

	werr := make(chan error, 1)
	go func() { werr <- w.Run(runCtx) }()
	select {
	case err = <-werr:
	case err = <-errc:
		log.Error("stopping", zap.Error(err))
		stopAll()
		<-werr
	}
	stopAll()
	wg.Wait()
	log.Info("stopped")
	return err
}

// readiness is what /readyz reports: why start-up is not done yet, then
// the worker's own readiness.
type readiness struct {
	state atomic.Pointer[string]
	w     atomic.Pointer[worker.Worker]
}

func (r *readiness) starting(what string) { r.state.Store(&what) }
func (r *readiness) use(w *worker.Worker) { r.w.Store(w) }

// Ready reports why the worker is not ready, or nil.
func (r *readiness) Ready() error {
	if w := r.w.Load(); w != nil {
		return w.Ready()
	}
	if s := r.state.Load(); s != nil {
		return errors.New("starting: " + *s)
	}
	return errors.New("starting")
}

// Alive reports the worker's NATS connection closed for good, or nil
// (also while starting).
func (r *readiness) Alive() error {
	if w := r.w.Load(); w != nil {
		return w.Alive()
	}
	return nil
}

// healthMux serves /metrics, /healthz (the process is alive: 503 once its
// NATS connection is closed for good, and the process exits) and /readyz
// (connected, streams and consumer present, catalog loaded).
func healthMux(reg *prometheus.Registry, w interface {
	Ready() error
	Alive() error
}) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := w.Alive(); err != nil { // the NATS connection is closed for good
			rw.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(rw, "not alive:", err)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := w.Ready(); err != nil {
			rw.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(rw, "not ready:", err)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	return mux
}

// serve listens on addr (failing at once when it cannot) and serves until
// ctx ends, then shuts the server down gracefully.
func serve(ctx context.Context, wg *sync.WaitGroup, srv *http.Server, addr, variable string, log *zap.Logger, errc chan<- error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return configError{fmt.Errorf("%s: cannot listen on %s: %w", variable, addr, err)}
	}
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("setting", variable))
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s: %w", variable, err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}
