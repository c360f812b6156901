package providertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
)

// FuzzReply is one seed of a reply-parsing fuzz target: the status (mapped
// into 200-599 as 200 + Status%400) and body of the one reply the fake
// gives to every request.
type FuzzReply struct {
	Status uint16
	Body   string
}

// ReplyFuzz is a provider's part of a reply-parsing fuzz target run by
// FuzzReplies: its seeds, its secrets and the calls it makes.
type ReplyFuzz struct {
	// Seeds are added to the corpus, after testdata/fuzz/<target>.
	Seeds []FuzzReply
	// Echoes are the secrets a reply may echo, by placeholder name: in a
	// body, {{name}} stands for the secret as it is, {{namejson}} for it
	// JSON-escaped and {{nameq}} for it URL-query-escaped.
	Echoes map[string]string
	// Secrets must be absent from every error the calls check, in each of
	// the forms above, in its text, its %+v and its attached reply
	// (events.ReplyOf).
	Secrets []string
	// Timeout bounds the calls of one input.
	Timeout time.Duration
	// Start builds the client under test against the fake at url, once
	// for the target (failing f if it cannot), and returns the calls to
	// make for every input. Calls passes each error it gets to check,
	// with any secrets of that call's own request (which must be absent
	// too); check ignores a nil error.
	Start func(f *testing.F, url string) (calls func(ctx context.Context, check func(err error, requestSecrets ...string)))
}

// FuzzReplies runs the reply-parsing fuzz target f: one fake server for
// the whole target answers every request with the fuzzed reply (status
// 200 + status%400, body with r.Echoes' placeholders replaced), and for
// every input r's calls run against it. The input fails if a call panics,
// if an error's classification (events.ClassOf) panics, or if any error
// passed to check holds a form of one of r.Secrets or of the secrets
// given with it. The fuzz function takes (status uint16, body []byte), so
// corpus files of that shape stay valid.
func FuzzReplies(f *testing.F, r ReplyFuzz) {
	f.Helper()
	for _, s := range r.Seeds {
		f.Add(s.Status, []byte(s.Body))
	}
	reply := &cannedReply{}
	hs := httptest.NewServer(reply)
	f.Cleanup(hs.Close)
	calls := r.Start(f, hs.URL)
	var pairs []string
	for _, name := range slices.Sorted(maps.Keys(r.Echoes)) {
		forms := secretForms(r.Echoes[name])
		pairs = append(pairs, "{{"+name+"}}", forms[0], "{{"+name+"json}}", forms[1], "{{"+name+"q}}", forms[2])
	}
	expand := strings.NewReplacer(pairs...)
	always := secretForms(r.Secrets...)
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		reply.set(200+int(status)%400, []byte(expand.Replace(string(body))))
		ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
		defer cancel()
		calls(ctx, func(err error, requestSecrets ...string) {
			t.Helper()
			if err == nil {
				return
			}
			_ = events.ClassOf(err)
			forms := append(secretForms(requestSecrets...), always...)
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
				for _, s := range forms {
					if strings.Contains(text, s) {
						t.Fatalf("a secret (%q) is in an error: %q", s, text)
					}
				}
			}
		})
	})
}

// secretForms are the forms of each secret that must never appear in an
// error: as it is, JSON-escaped and URL-query-escaped.
func secretForms(secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		j, _ := json.Marshal(s)
		out = append(out, s, strings.Trim(string(j), `"`), url.QueryEscape(s))
	}
	return out
}

// cannedReply is a server that answers every request with one reply.
type cannedReply struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (c *cannedReply) set(status int, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.body = status, body
}

func (c *cannedReply) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	status, body := c.status, c.body
	c.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Attempt runs op at p the way the worker does, Prepare (its plan stored
// in op), then Lookup, then Apply, and returns the first error, or nil
// when all three succeeded.
func Attempt(ctx context.Context, p Provider, op events.Operation) error {
	plan, err := p.Prepare(ctx, op)
	if err != nil {
		return err
	}
	op.Plan = plan
	if _, _, err := p.Lookup(ctx, op); err != nil {
		return err
	}
	_, err = p.Apply(ctx, op)
	return err
}
