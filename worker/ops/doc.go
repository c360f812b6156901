// Package ops serves hookworker's ops page: a small server-rendered web
// page, built into the worker, that shows the queue (depth, ack pending,
// redeliveries, age of the oldest pending event, dead letters, provider
// health, readiness), processing and failure rates read from the results
// stream, the latest failures, and the dead-letter stream, where an
// operator can inspect an entry (the original event, every attempt with
// the provider's reply, the operation records) and replay or discard it,
// one at a time or every entry matching a filter.
//
// The page needs no JavaScript and loads nothing from elsewhere: its
// Content-Security-Policy allows only its own inline style sheet (by hash)
// and its own forms.
//
// # Authentication
//
// Every route but the login form needs credentials: a bearer token
// (Config.Token, sent as "Authorization: Bearer <token>"), HTTP basic
// auth (Config.User and Config.Password), or a session cookie. A browser
// gets the session cookie by signing in with the token on the login form
// (shown with status 401 to a request without credentials) or by opening
// any page once with ?token=<token>, after which it is redirected to the
// same URL without the token. The session cookie is HttpOnly,
// SameSite=Lax (so that links from elsewhere open the page signed in; GET
// changes nothing), Secure over TLS, expires after 12 hours and is signed
// with a key derived from the credentials, so it survives a restart, works
// on every replica and dies when the credentials change. Secrets are
// compared in constant time. Without any credentials (allowed only on a
// loopback address, see Config.Validate) the page answers only requests
// whose Host is a loopback name, which defeats DNS rebinding.
//
// # Changes
//
// Replay and discard are POST forms. Each carries a CSRF token, an HMAC of
// a random per-browser cookie; a POST without both, or from another origin
// (Origin, Sec-Fetch-Site), is refused with 403. Discarding needs a ticked
// confirmation box; bulk actions show the matching entries and ask again,
// then touch only the entries shown that still match. After an action the
// browser is redirected (303) with a one-time flash message in a signed
// cookie. Every action is logged with who did it. Replay keeps the event's
// idempotency key (see worker.DeadLetters.Replay).
//
// The page never shows a secret: events, results and records carry none
// by design, write-back values are hidden, and any field whose name looks
// like a password, token or key is hidden too.
package ops
