package main

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Provider faults, each applied to one request:
const (
	faultUnavailable = "503-before-effect"    // 503, the fake never sees the request
	faultRateLimited = "429-retry-after"      // 429 with Retry-After: 1, never seen
	faultAfterEffect = "500-after-effect"     // the fake applies it; the reply is a 500
	faultDropped     = "dropped-after-effect" // the fake applies it; the connection closes without a reply
	faultSlow        = "slow-reply"           // the fake applies it; the reply comes 0.5–4 s later
)

var faultKinds = []string{faultUnavailable, faultRateLimited, faultAfterEffect, faultDropped, faultSlow}

// faulty sits in front of a provider fake and gives a share of requests a
// fault. The fake behind it stays the source of truth: an "after effect"
// fault lets the fake apply the request first.
type faulty struct {
	next http.Handler
	rate atomic.Uint64 // math.Float64bits would do; a per-mille integer is enough
	mu   sync.Mutex
	rng  *rand.Rand
	n    map[string]int
	reqs atomic.Int64
}

func newFaulty(next http.Handler, seed uint64) *faulty {
	return &faulty{next: next, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), n: map[string]int{}}
}

// setRate sets the share of requests that get a fault (0 turns faults off).
func (f *faulty) setRate(r float64) { f.rate.Store(uint64(r * 1000)) }

func (f *faulty) pick() (string, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.IntN(1000) >= int(f.rate.Load()) {
		return "", 0
	}
	k := faultKinds[f.rng.IntN(len(faultKinds))]
	f.n[k]++
	return k, time.Duration(500+f.rng.IntN(3500)) * time.Millisecond
}

// counts returns how many requests got each fault.
func (f *faulty) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.n))
	for k, v := range f.n {
		out[k] = v
	}
	return out
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.reqs.Add(1)
	_ = r.ParseForm() // the fakes parse it again: a no-op
	kind, slow := f.pick()
	switch kind {
	case "":
		f.next.ServeHTTP(w, r)
		return
	case faultUnavailable:
		http.Error(w, "Service Unavailable (chaos)", http.StatusServiceUnavailable)
		return
	case faultRateLimited:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Too Many Requests (chaos)", http.StatusTooManyRequests)
		return
	}
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r)
	switch kind {
	case faultAfterEffect:
		http.Error(w, "Internal Server Error (chaos, after the effect)", http.StatusInternalServerError)
	case faultDropped:
		panic(http.ErrAbortHandler) // close the connection without a reply
	case faultSlow:
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

// faultTotals sums the counts of several fault injectors.
func faultTotals(fs ...*faulty) (map[string]int, []string) {
	out := map[string]int{}
	for _, f := range fs {
		for k, v := range f.counts() {
			out[k] += v
		}
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out, keys
}
