package whmcs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookworker/hookworker/events"
)

// Metrics counts the write-back's work. Labels are bounded: WHMCS action
// names, result types and fixed outcome names, never ids.
type Metrics struct {
	// Calls is hookworker_writeback_total{action,outcome}: WHMCS API calls
	// made by the write-back, by action (UpdateClientProduct, UpdateClient,
	// AddClientNote, LogActivity, GetClientsProducts, GetActivityLog) and
	// outcome (ok, transient, permanent, auth, skipped_in_doubt).
	Calls *prometheus.CounterVec
	// Results is hookworker_writeback_results_total{type,outcome}: result
	// events handled, by type and outcome (applied, duplicate,
	// nothing_to_do, transient_error, permanent_error).
	Results *prometheus.CounterVec
}

func newMetrics() *Metrics {
	m := &Metrics{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_writeback_total",
			Help: "WHMCS API calls made by the write-back, by action and outcome (ok, transient, permanent, auth, skipped_in_doubt)."},
			[]string{"action", "outcome"}),
		Results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_writeback_results_total",
			Help: "Result events handled by the write-back, by type and outcome (applied, duplicate, nothing_to_do, transient_error, permanent_error)."},
			[]string{"type", "outcome"}),
	}
	return m
}

// NewMetrics creates the write-back metrics and registers them with reg
// (nil: not registered). Pass the result to Writer.WithMetrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Calls, m.Results} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) call(action string, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrAuth):
		outcome = "auth"
	case events.ClassOf(err) == events.Permanent:
		outcome = "permanent"
	default:
		outcome = "transient"
	}
	m.Calls.WithLabelValues(action, outcome).Inc()
}

func (m *Metrics) result(typ, outcome string) {
	m.Results.WithLabelValues(typ, outcome).Inc()
}
