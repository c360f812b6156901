package ops

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

//go:embed templates/*.html templates/ops.css
var files embed.FS

// csp allows nothing but the page's own inline style sheet (by hash), its
// own forms and links; no script runs anywhere.
var csp string

var pages map[string]*template.Template

func init() {
	css, err := files.ReadFile("templates/ops.css")
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(css)
	csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	layout, err := files.ReadFile("templates/layout.html")
	if err != nil {
		panic(err)
	}
	// The style sheet goes in as template text, byte for byte, so that its
	// hash matches the policy.
	layoutText := strings.Replace(string(layout), "/*CSS*/", string(css), 1)
	pages = map[string]*template.Template{}
	for _, name := range []string{"overview", "detail", "bulk", "login", "error"} {
		t := template.Must(template.New("layout").Funcs(funcs).Parse(layoutText))
		pages[name] = template.Must(t.ParseFS(files, "templates/"+name+".html"))
	}
}

// page is what every template gets.
type page struct {
	Title   string
	Data    any
	CSRF    string
	Flash   *flash
	Session bool // logged in with a session cookie: offer to sign out
	Nav     bool // show the navigation (false on the login page)
	Now     time.Time
	Banner  string // Config.Banner
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.CSRF = s.csrfToken(w, r)
	p.Now = s.now().UTC()
	p.Banner = s.cfg.Banner
	p.Nav = name != "login" && code != http.StatusUnauthorized
	p.Session = who(r) == "session"
	if r.Method == http.MethodGet {
		p.Flash = s.takeFlash(w, r)
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("ops page did not render", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page did not render; see the worker's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		if now.Sub(t) < time.Second {
			return "just now"
		}
		return human(now.Sub(t)) + " ago"
	},
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return "—"
		}
		return human(d)
	},
	"num": func(n any) string {
		s := fmt.Sprint(n)
		if len(s) <= 3 {
			return s
		}
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	},
	"f1":       func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"short":    short,
	"dash":     orDash,
	"plural":   plural,
	"outcome":  func(t events.Type) string { return strings.TrimPrefix(string(t), "provisioning.") },
	"nonzero":  func(n uint64) bool { return n > 0 },
	"inbound":  func() []events.Type { return events.InboundTypes() },
	"hasvalue": func(list []string, v string) bool { return v == "" || contains(list, v) },
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// short trims s to n runes for a table cell; the full text is in a title
// attribute or the detail page.
func short(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// human formats a duration for people: 45s, 3m 12s, 2h 5m, 3d 4h.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
