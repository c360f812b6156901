package ops

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

// StatusSource is what the page asks the running worker; *worker.Worker
// satisfies it. If it also has ConsumerName() string (as *worker.Worker
// does) the page reads that consumer, otherwise "hookworker"; if it has
// Providers() []string, providers not yet checked are listed too.
type StatusSource interface {
	// Status returns the worker's latest queue snapshot (with provider
	// health), or false before the first one.
	Status() (worker.Status, bool)
	// Ready reports why the worker is not ready, or nil.
	Ready() error
}

// Server is the ops page. Create it with New; serve Handler on your own
// server or call ListenAndServe.
type Server struct {
	cfg      Config
	js       jetstream.JetStream
	status   StatusSource
	consumer string
	log      *zap.Logger
	keys     keys
	mux      *http.ServeMux
	now      func() time.Time
}

// maxBulk is the most entries one bulk action touches.
const maxBulk = 500

// New returns the ops page reading js (the worker's streams, consumer and
// records bucket) and status (nil: no worker in this process; the queue is
// read from JetStream and readiness is not shown). cfg is validated.
func New(cfg Config, js jetstream.JetStream, status StatusSource, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("ops: a JetStream handle is required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, js: js, status: status, consumer: worker.DefaultOptions().ConsumerName,
		log: log.Named("ops"), keys: deriveKeys(cfg), mux: http.NewServeMux(), now: time.Now}
	if c, ok := status.(interface{ ConsumerName() string }); ok && c.ConsumerName() != "" {
		s.consumer = c.ConsumerName()
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.Handle("POST /logout", s.authed(s.logout))
	s.mux.Handle("GET /{$}", s.authed(s.overview))
	s.mux.Handle("GET /dlq/{seq}", s.authed(s.detail))
	s.mux.Handle("POST /dlq/{seq}/replay", s.authed(s.replay))
	s.mux.Handle("POST /dlq/{seq}/discard", s.authed(s.discard))
	s.mux.Handle("POST /dlq/bulk", s.authed(s.bulk))
	s.mux.Handle("/", s.authed(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	}))
}

// Handler returns the page's HTTP handler. Every route but the login form
// requires credentials; responses carry strict security headers.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
		}
		s.mux.ServeHTTP(w, r)
	})
}

// ListenAndServe serves the page on cfg.Addr until ctx is done, then shuts
// down gracefully (requests in progress get 10 seconds). It returns nil
// after a shutdown caused by ctx.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.cfg.Addr == "" {
		return errors.New("HOOKWORKER_OPS_ADDR: no address to listen on")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("HOOKWORKER_OPS_ADDR: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener you opened (it is closed on
// return).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: zap.NewStdLog(s.log)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.log.Info("ops page listening", zap.String("addr", ln.Addr().String()), zap.Bool("auth", s.cfg.hasCredentials()))
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	return err
}

type ctxKey struct{}

// authed wraps h: without valid credentials the answer is 401 with the
// login form; with ?token= on a GET the browser gets a session cookie and
// is redirected to the same URL without the token.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("token"); tok != "" && r.Method == http.MethodGet {
			if s.checkLoginToken(tok) {
				setCookie(w, r, sessionCookie, s.newSession(), int(sessionTTL.Seconds()))
				q := r.URL.Query()
				q.Del("token")
				u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
				s.log.Info("ops login", zap.String("via", "query token"), zap.String("remote", r.RemoteAddr))
				http.Redirect(w, r, u.String(), http.StatusSeeOther)
				return
			}
			s.log.Warn("ops login refused", zap.String("remote", r.RemoteAddr))
		}
		who, ok := s.authenticate(r)
		if !ok {
			s.unauthorized(w, r, "")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, who)))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	if !s.cfg.hasCredentials() {
		s.errorPage(w, r, http.StatusForbidden, "Without HOOKWORKER_OPS_TOKEN the ops page answers only requests for a loopback host name (localhost, 127.0.0.1).")
		return
	}
	if s.cfg.User != "" {
		w.Header().Add("WWW-Authenticate", `Basic realm="hookworker ops", charset="UTF-8"`)
	}
	if s.cfg.Token != "" {
		w.Header().Add("WWW-Authenticate", `Bearer realm="hookworker ops"`)
	}
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = "/"
	}
	s.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Data: loginData{Next: safeNext(next), Error: msg, TokenLogin: s.cfg.Token != ""}})
}

func who(r *http.Request) string {
	p, _ := r.Context().Value(ctxKey{}).(principal)
	return string(p)
}

// safeNext keeps a post-login redirect on this site.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}

type loginData struct {
	Next       string
	Error      string
	TokenLogin bool
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.unauthorized(w, r, "")
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		s.forbidden(w, r)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	if !s.checkLoginToken(r.PostFormValue("token")) {
		s.log.Warn("ops login refused", zap.String("remote", r.RemoteAddr))
		time.Sleep(250 * time.Millisecond) // slow down guessing a little
		s.unauthorized(w, r, "That token is not right.")
		return
	}
	s.log.Info("ops login", zap.String("via", "form"), zap.String("remote", r.RemoteAddr))
	setCookie(w, r, sessionCookie, s.newSession(), int(sessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		s.forbidden(w, r)
		return
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("ops request refused: missing or wrong CSRF token", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
	s.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from this page. Go back, reload the page and try again.")
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", page{Title: http.StatusText(code), Data: errorData{Code: code, Message: msg}})
}

type errorData struct {
	Code    int
	Message string
}

// filterFrom reads a dead-letter filter from query or form values.
func filterFrom(v url.Values) worker.Filter {
	f := worker.Filter{Type: events.Type(strings.TrimSpace(v.Get("type"))), Source: strings.TrimSpace(v.Get("source")),
		EventID: strings.TrimSpace(v.Get("event_id"))}
	if c := events.ErrorClass(v.Get("class")); c == events.Transient || c == events.Permanent {
		f.Class = c
	}
	return f
}

func filterQuery(f worker.Filter) string {
	v := url.Values{}
	for k, x := range map[string]string{"type": string(f.Type), "source": f.Source, "class": string(f.Class), "event_id": f.EventID} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

func filterActive(f worker.Filter) bool {
	return f.Type != "" || f.Source != "" || f.Class != "" || f.EventID != ""
}

type overviewData struct {
	Queue   queueView
	Results resultsView
	DLQ     deadLetterView
	Filter  worker.Filter
	Active  bool
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	f := filterFrom(r.URL.Query())
	now := s.now()
	d := overviewData{Filter: f, Active: filterActive(f)}
	d.Queue = s.readQueue(ctx)
	d.Results = readResults(ctx, s.js, now)
	d.DLQ = readDeadLetters(ctx, s.js, f)
	s.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Data: d})
}

type detailData struct {
	Entry    worker.Entry
	Original string
	IsJSON   bool
	Records  []recordView
}

func (s *Server) openDLQ(ctx context.Context) (*worker.DeadLetters, error) {
	return worker.OpenDeadLetters(ctx, s.js)
}

func parseSeq(r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	return seq, err == nil && seq > 0
}

func (s *Server) detail(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	seq, ok := parseSeq(r)
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "There is no such dead letter.")
		return
	}
	dlq, err := s.openDLQ(ctx)
	if err != nil {
		s.errorPage(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	e, err := dlq.Get(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			s.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("Dead letter #%d is not in the dead-letter stream: it was replayed or discarded.", seq))
			return
		}
		s.errorPage(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	text, isJSON := prettyOriginal(e.DeadLetter)
	d := detailData{Entry: e, Original: text, IsJSON: isJSON, Records: readRecords(ctx, s.js, e.Operations)}
	s.render(w, r, http.StatusOK, "detail", page{Title: fmt.Sprintf("Dead letter #%d", seq), Data: d})
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		s.forbidden(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	seq, ok := parseSeq(r)
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "There is no such dead letter.")
		return
	}
	dlq, err := s.openDLQ(ctx)
	if err != nil {
		s.redirect(w, r, "/dlq/"+strconv.FormatUint(seq, 10), flash{"error", err.Error()})
		return
	}
	e, err := dlq.Get(ctx, seq)
	if err != nil {
		s.redirect(w, r, "/", flash{"error", fmt.Sprintf("Dead letter #%d was not replayed: %v", seq, err)})
		return
	}
	evSeq, err := dlq.Replay(ctx, seq)
	if err != nil {
		s.log.Warn("ops replay failed", zap.Uint64("seq", seq), zap.String("by", who(r)), zap.Error(err))
		s.redirect(w, r, "/dlq/"+strconv.FormatUint(seq, 10), flash{"error", fmt.Sprintf("Replay of dead letter #%d failed: %v", seq, err)})
		return
	}
	s.log.Info("ops replayed dead letter", zap.Uint64("seq", seq), zap.Uint64("event_seq", evSeq),
		zap.String("event_id", e.EventID), zap.String("by", who(r)))
	s.redirect(w, r, "/", flash{"ok", fmt.Sprintf("Replayed dead letter #%d (%s %s) as event #%d on %s. It keeps its idempotency key, so operations that already succeeded are not repeated.",
		seq, orDash(string(e.EventType)), orDash(e.EventID), evSeq, e.Subject)})
}

func (s *Server) discard(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		s.forbidden(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	seq, ok := parseSeq(r)
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "There is no such dead letter.")
		return
	}
	back := "/dlq/" + strconv.FormatUint(seq, 10)
	if r.PostFormValue("confirm") != "yes" {
		s.redirect(w, r, back, flash{"error", "Nothing was discarded: tick the box to confirm that the event will not be processed."})
		return
	}
	dlq, err := s.openDLQ(ctx)
	if err != nil {
		s.redirect(w, r, back, flash{"error", err.Error()})
		return
	}
	e, _ := dlq.Get(ctx, seq)
	if err := dlq.Discard(ctx, seq); err != nil {
		s.redirect(w, r, "/", flash{"error", fmt.Sprintf("Discard failed: %v", err)})
		return
	}
	s.log.Info("ops discarded dead letter", zap.Uint64("seq", seq), zap.String("event_id", e.EventID), zap.String("by", who(r)))
	s.redirect(w, r, "/", flash{"ok", fmt.Sprintf("Discarded dead letter #%d (%s %s). It will not be processed.", seq, orDash(string(e.EventType)), orDash(e.EventID))})
}

type bulkData struct {
	Action  string
	Filter  worker.Filter
	Cancel  template.URL // back to the filtered table
	Active  bool
	Entries []worker.Entry
	More    bool
}

// bulk replays or discards every entry matching a filter in two steps:
// the first POST shows what matches and asks for confirmation; the second
// (confirm=yes) acts on exactly the entries that were shown and still
// match.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		s.forbidden(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	action := r.PostFormValue("action")
	if action != "replay" && action != "discard" {
		s.errorPage(w, r, http.StatusBadRequest, "Unknown bulk action.")
		return
	}
	f := filterFrom(r.PostForm)
	back := "/"
	if q := filterQuery(f); q != "" {
		back += "?" + q
	}
	back += "#dead-letters"
	if r.PostFormValue("confirm") != "yes" {
		v := readDeadLetters(ctx, s.js, f)
		if v.Err != "" {
			s.redirect(w, r, back, flash{"error", "Could not read the dead letters: " + v.Err})
			return
		}
		if len(v.Matching) == 0 {
			s.redirect(w, r, back, flash{"error", "No dead letters match this filter; nothing to " + action + "."})
			return
		}
		d := bulkData{Action: action, Filter: f, Cancel: template.URL(back), Active: filterActive(f), Entries: v.Matching}
		if len(d.Entries) > maxBulk {
			d.Entries, d.More = d.Entries[:maxBulk], true
		}
		s.render(w, r, http.StatusOK, "bulk", page{Title: "Confirm " + action, Data: d})
		return
	}
	dlq, err := s.openDLQ(ctx)
	if err != nil {
		s.redirect(w, r, back, flash{"error", err.Error()})
		return
	}
	var done, skipped int
	var errs []string
	seqs := r.PostForm["seq"]
	if len(seqs) > maxBulk {
		seqs = seqs[:maxBulk]
	}
	for _, v := range seqs {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue
		}
		e, err := dlq.Get(ctx, seq)
		if err != nil || !matches(f, e) {
			skipped++ // already replayed or discarded meanwhile
			continue
		}
		if action == "replay" {
			_, err = dlq.Replay(ctx, seq)
		} else {
			err = dlq.Discard(ctx, seq)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("#%d: %v", seq, err))
			continue
		}
		done++
	}
	s.log.Info("ops bulk action on dead letters", zap.String("action", action), zap.Int("done", done), zap.Int("skipped", skipped),
		zap.Int("failed", len(errs)), zap.String("filter", filterQuery(f)), zap.String("by", who(r)))
	verb := map[string]string{"replay": "Replayed", "discard": "Discarded"}[action]
	msg := fmt.Sprintf("%s %d dead letter%s.", verb, done, plural(done))
	if action == "replay" && done > 0 {
		msg += " Each event keeps its idempotency key."
	}
	if skipped > 0 {
		msg += fmt.Sprintf(" %d had already left the dead-letter stream or no longer matched.", skipped)
	}
	kind := "ok"
	if len(errs) > 0 {
		kind = "error"
		failed := len(errs)
		if failed > 5 {
			errs = append(errs[:5], fmt.Sprintf("and %d more", failed-5))
		}
		msg += fmt.Sprintf(" %d failed: %s", failed, strings.Join(errs, "; "))
	}
	s.redirect(w, r, "/#dead-letters", flash{kind, msg})
}

func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to string, f flash) {
	s.setFlash(w, r, f)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
