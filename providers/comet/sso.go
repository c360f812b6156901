package comet

import (
	"context"
	"fmt"
	"net/url"

	"github.com/hookworker/hookworker/events"
)

// SingleSignOn starts a Comet Server session as the end user username and
// returns where the browser logs in and the session key, for the WHMCS
// module's single sign-on.
//
// Wire format (comet-go-sdk v25.9.6, cometsdk.go
// AdminAccountSessionStartAsUser): POST
// /api/v1/admin/account/session-start-as-user with the admin credentials and
// TargetUser; the reply is a SessionKeyRegeneratedResponse
// {Status, Message, SessionKey, SessionType}. The browser then opens the
// Comet Server's web interface (loginURL, the server's own address) and
// posts {"msg":"session_login","username":…,"sessionkey":…} to it, which
// is how the official Comet WHMCS module logs in with a session key
// (CometBackup/comet-whmcs-module functions.php performServerLogin, commit
// 7171d7f, 2025-03; that module offers it for the admin session only).
//
// The session key logs in as that user: it is returned, never logged and
// never part of an error. An unknown user is a permanent error.
func (p *Provider) SingleSignOn(ctx context.Context, username string) (loginURL, sessionKey string, err error) {
	if username == "" {
		return "", "", events.Permanentf("comet account/session-start-as-user: no username")
	}
	var rep struct {
		Status      int
		Message     string
		SessionKey  string
		SessionType string
	}
	if err := p.call(ctx, "account/session-start-as-user", username, url.Values{"TargetUser": {username}}, &rep); err != nil {
		return "", "", err
	}
	if rep.SessionKey == "" {
		return "", "", events.AsPermanent(fmt.Errorf("comet account/session-start-as-user %q: the reply has no SessionKey (Status %d %q)", username, rep.Status, rep.Message))
	}
	return p.base + "/", rep.SessionKey, nil
}
