package ops_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/worker/ops"
)

// A banner (the sandbox mode) is on every page, the login form included;
// without one there is none.
func TestBannerOnEveryPage(t *testing.T) {
	const text = "Sandbox mode (memory): every event is provisioned at the sandbox"
	e := newEnv(t, ops.Config{Token: testToken, Banner: text})
	c := e.client(bearer(testToken))
	anon := e.client(nil)
	for _, p := range []struct {
		c    *client
		path string
		code int
	}{{c, "/", http.StatusOK}, {c, "/dlq/999", http.StatusNotFound}, {anon, "/", http.StatusUnauthorized}} {
		res, body := p.c.get(p.path)
		if res.StatusCode != p.code {
			t.Fatalf("GET %s: %d, want %d", p.path, res.StatusCode, p.code)
		}
		if !strings.Contains(body, `<div class="banner" role="alert" id="banner">`+text+`</div>`) {
			t.Errorf("GET %s has no banner:\n%s", p.path, body)
		}
	}
	plain := newEnv(t, ops.Config{Token: testToken})
	if _, body := plain.client(bearer(testToken)).get("/"); strings.Contains(body, `id="banner"`) {
		t.Error("a banner without Config.Banner")
	}
}
