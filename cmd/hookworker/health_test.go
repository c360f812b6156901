package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeHealth struct{ ready, alive error }

func (f fakeHealth) Ready() error { return f.ready }
func (f fakeHealth) Alive() error { return f.alive }

// Issue 10: after nats.go closed the connection for good, /healthz stayed
// 200 and nothing restarted the process.
func TestHealthzFailsOnceTheConnectionIsClosedForGood(t *testing.T) {
	for _, tc := range []struct {
		name         string
		h            fakeHealth
		healthz, rdy int
	}{
		{"running", fakeHealth{}, http.StatusOK, http.StatusOK},
		{"not ready yet", fakeHealth{ready: errors.New("starting")}, http.StatusOK, http.StatusServiceUnavailable},
		{"connection closed for good", fakeHealth{ready: errors.New("not consuming"), alive: errors.New("NATS connection closed for good")},
			http.StatusServiceUnavailable, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := healthMux(prometheus.NewRegistry(), tc.h)
			for path, want := range map[string]int{"/healthz": tc.healthz, "/readyz": tc.rdy} {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != want {
					t.Errorf("%s = %d, want %d (%s)", path, rec.Code, want, rec.Body)
				}
			}
		})
	}
}
