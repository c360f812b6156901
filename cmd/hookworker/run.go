package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
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
	set, err := buildProviders(cfg, passwords, log)
	if err != nil {
		return err
	}
	defer set.close()

	b, err := cfg.connect(log, true)
	if err != nil {
		return err
	}
	defer b.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookworker_build_info", Help: "Always 1; the version label says which build runs."}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	reg.MustRegister(buildInfo)
	metrics := worker.NewMetrics(reg)

	w, err := worker.New(b.js, set.catalog, set.providers, cfg.Options, log, metrics)
	if err != nil {
		return configError{err}
	}
	// A NATS cluster that is still forming answers stream creation late:
	// keep trying for a while instead of exiting.
	setup := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(10*time.Second), backoff.WithMaxElapsedTime(2*time.Minute)), ctx)
	err = backoff.RetryNotify(func() error {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return w.Setup(sctx)
	}, setup, func(err error, d time.Duration) {
		log.Warn("setting up streams failed; retrying", zap.Error(err), zap.Duration("in", d))
	})
	if err != nil {
		return fmt.Errorf("set up streams on NATS: %w", err)
	}
	log.Info("catalog loaded", zap.Int("products", len(set.catalog.Products())), zap.Strings("providers", w.Providers()))

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	if cfg.MetricsAddr != "" {
		srv := &http.Server{Handler: healthMux(reg, w), ReadHeaderTimeout: 5 * time.Second}
		if err := serve(runCtx, &wg, srv, cfg.MetricsAddr, "HOOKWORKER_METRICS_ADDR", log, errc); err != nil {
			return err
		}
	}
	if err := startOps(runCtx, &wg, cfg, w, log, errc); err != nil {
		return err
	}
	rpc, err := w.StartRPC(runCtx, b.nc) // status, providers check, WHMCS module requests
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

// healthMux serves /metrics, /healthz (the process is alive) and /readyz
// (connected, streams and consumer present, catalog loaded).
func healthMux(reg *prometheus.Registry, w *worker.Worker) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
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
