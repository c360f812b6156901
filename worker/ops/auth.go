package ops

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cookie names. Every cookie is HttpOnly, SameSite=Strict (the session
// cookie Lax) and Secure when the request came over TLS.
const (
	sessionCookie = "hookworker_ops_session"
	csrfCookie    = "hookworker_ops_csrf"
	flashCookie   = "hookworker_ops_flash"
	csrfField     = "csrf_token"
	sessionTTL    = 12 * time.Hour
)

// principal says how a request authenticated, for the audit log.
type principal string

// keys are the server's HMAC keys. With credentials configured they are
// derived from them, so that sessions survive a restart, work across
// replicas and die when the credentials change; without, they are random.
type keys struct {
	session, csrf, flash []byte
}

func deriveKeys(c Config) keys {
	var master []byte
	if c.hasCredentials() {
		m := hmac.New(sha256.New, []byte("hookworker ops keys v1"))
		for _, s := range []string{c.Token, c.User, c.Password} {
			m.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
		}
		master = m.Sum(nil)
	} else {
		master = make([]byte, 32)
		_, _ = rand.Read(master)
	}
	sub := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return keys{session: sub("session"), csrf: sub("csrf"), flash: sub("flash")}
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(strconv.Itoa(len(p)) + ":" + p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// equal compares two secrets in constant time (for equal-length hashes;
// hashing first hides the length of the expected value).
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	// The session cookie is Lax so that a link to the page from elsewhere
	// (a chat message, an alert) opens it signed in; GET changes nothing,
	// and every POST needs the CSRF token. The other cookies are Strict.
	same := http.SameSiteStrictMode
	if name == sessionCookie {
		same = http.SameSiteLaxMode
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: same})
}

// authenticate checks the request's credentials: a bearer token, basic
// auth, or a session cookie. ok is false when none is valid.
func (s *Server) authenticate(r *http.Request) (principal, bool) {
	if !s.cfg.hasCredentials() {
		// Validate allows this only on loopback. Refuse Host names that are
		// not loopback, so that a DNS-rebinding page cannot read us.
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		return "loopback", isLoopbackHost(host)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok && s.cfg.Token != "" {
			return "token", equal(strings.TrimSpace(tok), s.cfg.Token)
		}
		if u, p, ok := r.BasicAuth(); ok && s.cfg.User != "" {
			okU, okP := equal(u, s.cfg.User), equal(p, s.cfg.Password)
			return principal("basic:" + s.cfg.User), okU && okP
		}
		return "", false
	}
	if c, err := r.Cookie(sessionCookie); err == nil && s.validSession(c.Value) {
		return "session", true
	}
	return "", false
}

// newSession returns a session cookie value: id.expiry.mac.
func (s *Server) newSession() string {
	id := randomToken()
	exp := strconv.FormatInt(time.Now().Add(sessionTTL).Unix(), 10)
	return id + "." + exp + "." + mac(s.keys.session, id, exp)
}

func (s *Server) validSession(v string) bool {
	id, rest, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	exp, sig, ok := strings.Cut(rest, ".")
	if !ok || !equal(sig, mac(s.keys.session, id, exp)) {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && time.Now().Before(time.Unix(unix, 0))
}

// checkLoginToken checks a token typed into the login form or given as
// ?token=.
func (s *Server) checkLoginToken(tok string) bool {
	return s.cfg.Token != "" && equal(tok, s.cfg.Token)
}

// csrfToken returns the form token for this browser, setting the CSRF
// cookie when it has none. The form token is an HMAC of the cookie, so a
// cookie planted by someone else does not yield a valid form token.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		v = c.Value
	} else {
		v = randomToken()
		setCookie(w, r, csrfCookie, v, 0)
		// Later handlers in this request read it back.
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	}
	return mac(s.keys.csrf, v)
}

// checkCSRF verifies a state-changing request: it must carry the CSRF
// cookie and the matching form field, and must not come from another site.
func (s *Server) checkCSRF(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return false
	}
	got := r.PostFormValue(csrfField)
	return got != "" && equal(got, mac(s.keys.csrf, c.Value))
}

// flash is a one-time message shown after a redirect.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

func (s *Server) setFlash(w http.ResponseWriter, r *http.Request, f flash) {
	if len(f.Text) > 1500 {
		f.Text = f.Text[:1500] + "…"
	}
	body := base64.RawURLEncoding.EncodeToString([]byte(f.Kind + "|" + f.Text))
	setCookie(w, r, flashCookie, body+"."+mac(s.keys.flash, body), 120)
}

// takeFlash reads and clears the flash message; a forged one is ignored.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	setCookie(w, r, flashCookie, "", -1)
	body, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !equal(sig, mac(s.keys.flash, body)) {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil
	}
	kind, text, _ := strings.Cut(string(b), "|")
	if kind != "ok" {
		kind = "error"
	}
	return &flash{Kind: kind, Text: text}
}
