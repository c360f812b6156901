package comet_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
)

// HTTP 200 bodies with a Status: an error exactly when the Go SDK says so
// (Status >= 400 with a Message), and also for Status >= 400 without one,
// as the PHP SDK (never a "failed" reply taken for a done write); Status 0
// or < 400 is success (issue 8 point 7).
func TestBodyStatusAsTheSDKs(t *testing.T) {
	for _, tc := range []struct {
		body    string
		wantErr bool
	}{
		{`{"Status":500,"Message":"Internal error"}`, true}, // Go SDK: ErrCometAPIResponseMessage
		{`{"Status":400,"Message":"Invalid"}`, true},
		{`{"Status":500,"Message":""}`, true}, // Go SDK: success; PHP SDK: error — see api.go
		{`{"Status":200,"Message":"OK"}`, false},
		{`{"Status":0,"Message":"odd"}`, false},
		{`{"Status":399,"Message":"odd"}`, false},
	} {
		srv := comettest.NewServer()
		url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/delete-user") {
				_, _ = w.Write([]byte(tc.body))
				return true
			}
			return false
		})
		e := newEnvAt(t, srv, url)
		o := op(events.Terminate, 1, nil, nil)
		o.Username = "someone-1"
		if err := srv.AddUser(o.Username, "password-1"); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Apply(testCtx(t), e.prepared(t, o))
		var ae *comet.APIError
		if tc.wantErr && (err == nil || !errors.As(err, &ae) || !ae.InBody) {
			t.Errorf("%s: err %v, want an APIError in the body", tc.body, err)
		}
		if !tc.wantErr && err != nil {
			t.Errorf("%s: err %v, want success", tc.body, err)
		}
		srv.Close()
	}
}
