package providers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookworker/hookworker/providers"
)

func TestMemoryReservations(t *testing.T) {
	errTaken := errors.New("taken")
	free := func(v string) func([]providers.Claim) (string, error) {
		return func(others []providers.Claim) (string, error) {
			if len(others) > 0 {
				return "", errTaken
			}
			return v, nil
		}
	}
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, r *providers.MemoryReservations)
	}{
		{"a second holder is refused while the first holds", func(t *testing.T, r *providers.MemoryReservations) {
			mustReserve(t, r, "n", "a", free("A"), "A")
			if _, err := r.Reserve(ctx, "n", "b", free("B")); !errors.Is(err, errTaken) {
				t.Fatalf("err %v, want taken", err)
			}
		}},
		{"the holder finds its own claim", func(t *testing.T, r *providers.MemoryReservations) {
			mustReserve(t, r, "n", "a", free("A"), "A")
			mustReserve(t, r, "n", "a", free("other"), "A")
		}},
		{"released: the next holder gets it", func(t *testing.T, r *providers.MemoryReservations) {
			mustReserve(t, r, "n", "a", free("A"), "A")
			if err := r.Release(ctx, "n", "a"); err != nil {
				t.Fatal(err)
			}
			mustReserve(t, r, "n", "b", free("B"), "B")
		}},
		{"lease over: the next holder gets it", func(t *testing.T, r *providers.MemoryReservations) {
			mustReserve(t, r, "n", "a", free("A"), "A")
			time.Sleep(60 * time.Millisecond)
			mustReserve(t, r, "n", "b", free("B"), "B")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, providers.NewMemoryReservations(50*time.Millisecond)) })
	}
}

func mustReserve(t *testing.T, r providers.Reservations, name, holder string, decide func([]providers.Claim) (string, error), want string) {
	t.Helper()
	v, err := r.Reserve(context.Background(), name, holder, decide)
	if err != nil || v != want {
		t.Fatalf("Reserve(%s, %s) = %q, %v; want %q", name, holder, v, err, want)
	}
}
