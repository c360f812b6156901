package storegrid_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
)

func TestReplyClassification(t *testing.T) {
	tests := []struct {
		name    string
		inject  func(srv *storegridtest.Server)
		class   events.ErrorClass
		is      error  // matched by errors.Is, if set
		reply   string // in the attached reply, if set
		retryIn time.Duration
	}{
		{name: "HTTP 503", inject: func(s *storegridtest.Server) { s.FailNext(1, 503) }, class: events.Transient, reply: "injected failure"},
		{name: "HTTP 500", inject: func(s *storegridtest.Server) { s.FailNext(1, 500) }, class: events.Transient},
		{name: "HTTP 429", inject: func(s *storegridtest.Server) { s.FailNext(1, 429) }, class: events.Transient},
		{name: "HTTP 400", inject: func(s *storegridtest.Server) { s.FailNext(1, 400) }, class: events.Permanent, reply: "INJECTED_FAILURE"},
		{name: "HTTP 403", inject: func(s *storegridtest.Server) { s.FailNext(1, 403) }, class: events.Permanent},
		{name: "busy code", inject: func(s *storegridtest.Server) { s.FailNextReply(1, 200, "SERVER_BUSY", "try later") },
			class: events.Transient, is: storegrid.ErrBusy, reply: "SERVER_BUSY"},
		{name: "busy message", inject: func(s *storegridtest.Server) { s.FailNextReply(1, 200, "E42", "Server is busy, retry") },
			class: events.Transient, is: storegrid.ErrBusy},
		{name: "in-body error", inject: func(s *storegridtest.Server) { s.FailNextReply(1, 200, "INVALID_REQUEST", "quota too large") },
			class: events.Permanent, reply: "quota too large"},
		{name: "in-body auth failure", inject: func(s *storegridtest.Server) { s.FailNextReply(1, 200, "AUTH_FAILED", "bad login") },
			class: events.Permanent, is: storegrid.ErrAuth},
		{name: "HTTP 401 auth failure", inject: func(s *storegridtest.Server) { s.FailNextReply(1, 401, "AUTH_FAILED", "bad login") },
			class: events.Permanent, is: storegrid.ErrAuth},
		{name: "dropped connection", inject: func(s *storegridtest.Server) { s.DropAfterEffect() }, class: events.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.AddReseller(testReseller)
			p := newProvider(t, srv, nil)
			op := opFor(t, p, events.SignupCustomer, 901, customerSettings())
			tt.inject(srv)
			_, err := p.Apply(ctxT(t), op)
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			if c := events.ClassOf(err); c != tt.class {
				t.Fatalf("class %s, want %s: %v", c, tt.class, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v does not match %v", err, tt.is)
			}
			if !strings.Contains(events.ReplyOf(err), tt.reply) {
				t.Fatalf("reply %q does not contain %q", events.ReplyOf(err), tt.reply)
			}
			for _, s := range []string{err.Error(), events.ReplyOf(err)} {
				if strings.Contains(s, srv.Password) || strings.Contains(s, "password=") {
					t.Fatalf("error carries the request or the admin password: %s", s)
				}
			}
		})
	}
}

// TestUnrecognisedReply: a body not in the assumed format (for example the
// console's HTML login page at a wrong path) is permanent, with the body
// attached.
func TestUnrecognisedReply(t *testing.T) {
	for _, status := range []int{200, 404} {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte("<html>StoreGrid login</html>"))
		}))
		t.Cleanup(front.Close)
		srv := newFake(t)
		cfg := config(srv)
		cfg.URL = front.URL
		p, err := storegrid.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Check(ctxT(t))
		if err == nil || events.ClassOf(err) != events.Permanent || errors.Is(err, storegrid.ErrNotFound) {
			t.Fatalf("HTTP %d HTML reply: %v (class %s), want permanent and not ErrNotFound", status, err, events.ClassOf(err))
		}
		if !strings.Contains(events.ReplyOf(err), "StoreGrid login") {
			t.Fatalf("reply %q not attached", events.ReplyOf(err))
		}
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	srv := newFake(t)
	srv.Delay(2 * time.Second)
	cfg := config(srv)
	cfg.Timeout = 100 * time.Millisecond
	p, err := storegrid.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctxT(t)); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("slow server: %v (class %s), want transient", err, events.ClassOf(err))
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		setup func(cfg *storegrid.Config, srv *storegridtest.Server)
		class events.ErrorClass // "" = success
		is    error
	}{
		{name: "good credentials", setup: func(*storegrid.Config, *storegridtest.Server) {}},
		{name: "wrong password", setup: func(c *storegrid.Config, _ *storegridtest.Server) { c.Password = "wrong" },
			class: events.Permanent, is: storegrid.ErrAuth},
		{name: "wrong user", setup: func(c *storegrid.Config, _ *storegridtest.Server) { c.Username = "root" },
			class: events.Permanent, is: storegrid.ErrAuth},
		{name: "server down", setup: func(_ *storegrid.Config, s *storegridtest.Server) { s.Close() },
			class: events.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			cfg := config(srv)
			tt.setup(&cfg, srv)
			p, err := storegrid.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(ctxT(t))
			switch {
			case tt.class == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.class != "" && (err == nil || events.ClassOf(err) != tt.class):
				t.Fatalf("Check = %v (class %s), want %s", err, events.ClassOf(err), tt.class)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Fatalf("Check = %v, want %v", err, tt.is)
			}
			if err != nil && strings.Contains(err.Error()+events.ReplyOf(err), cfg.Password) {
				t.Fatalf("error carries the password: %v", err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	srv := newFake(t)
	front := httptest.NewTLSServer(srv)
	t.Cleanup(front.Close)
	for _, insecure := range []bool{false, true} {
		cfg := config(srv)
		cfg.URL = front.URL
		cfg.TLSInsecure = insecure
		p, err := storegrid.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Check(ctxT(t))
		if insecure && err != nil {
			t.Fatalf("Check with verification off: %v", err)
		}
		if !insecure && (err == nil || events.ClassOf(err) != events.Permanent) {
			t.Fatalf("untrusted certificate: %v (class %s), want permanent", err, events.ClassOf(err))
		}
	}
}
