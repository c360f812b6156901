package events

import (
	"fmt"
	"time"
)

// Request-reply subjects the worker answers on (core NATS, not stored by any
// stream: nothing under hookworker.rpc is captured). Every worker replica
// subscribes in the RPCQueue queue group, so exactly one answers each
// request. The WHMCS module (Test Connection, single sign-on, the admin
// services tab) and the CLI (`hookworker status`, `providers check`) ask
// them over the same authenticated NATS connection they publish events on.
//
// Requests and replies are JSON. A reply never carries a secret, except the
// single-use Comet login of SSOReply.
const (
	// RPCPrefix starts every request subject.
	RPCPrefix = "hookworker.rpc"
	// RPCQueue is the queue group every worker replica answers in.
	RPCQueue = "hookworker-rpc"

	// RPCStatus: RPCRequest (no field needed) → StatusReply.
	RPCStatus = RPCPrefix + ".status"
	// RPCProvidersCheck: RPCRequest{Provider} ("" = every configured
	// provider) → ProvidersCheckReply. Runs each provider's Check now.
	RPCProvidersCheck = RPCPrefix + ".providers.check"
	// RPCServiceResult: RPCRequest{Source, ServiceID} → ServiceResultReply,
	// the latest result event for the service and its dead letters.
	RPCServiceResult = RPCPrefix + ".service.result"
	// RPCServiceRetry: RPCRequest{Source, ServiceID} → ServiceRetryReply.
	// Replays every dead letter of the service (same idempotency keys).
	RPCServiceRetry = RPCPrefix + ".service.retry"
	// RPCCometSSO: RPCRequest{Source, ServiceID, Username} → SSOReply, a
	// Comet session for the service's user.
	RPCCometSSO = RPCPrefix + ".sso.comet"
)

// RPCDefaultTimeout is how long a caller waits for a reply by default:
// short, so that a WHMCS page never hangs on a worker that does not answer.
const RPCDefaultTimeout = 3 * time.Second

// RPCRequest is the body of every request. Unused fields are ignored.
type RPCRequest struct {
	Source    string `json:"source,omitempty"`     // WHMCS instance (the hook config's instance)
	ServiceID int    `json:"service_id,omitempty"` // WHMCS service (tblhosting.id)
	ProductID int    `json:"product_id,omitempty"`
	Provider  string `json:"provider,omitempty"`
	Username  string `json:"username,omitempty"` // the service username WHMCS holds
	// TimeoutMS is how long the caller waits; the worker gives up on the
	// request after it (default RPCDefaultTimeout, at most 30 s).
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// ServiceRequired checks that r names a WHMCS instance and a service.
func (r RPCRequest) ServiceRequired() error {
	if !validToken(r.Source) {
		return fieldErr("source", "must be the WHMCS instance name (letters, digits, - or _)")
	}
	if r.ServiceID <= 0 {
		return fieldErr("service_id", "must be a positive WHMCS service id")
	}
	return nil
}

// RPCReply is embedded in every reply: Error is set (and nothing else can be
// relied on) when the request failed; Worker names the replica that answered.
type RPCReply struct {
	Error  string `json:"error,omitempty"`
	Worker string `json:"worker,omitempty"`
}

// Err returns the reply's error, or nil.
func (r RPCReply) Err() error {
	if r.Error == "" {
		return nil
	}
	return fmt.Errorf("worker %s: %s", r.Worker, r.Error)
}

// ProviderCheck is the outcome of one provider's Check.
type ProviderCheck struct {
	Provider   string     `json:"provider"`
	OK         bool       `json:"ok"`
	ErrorClass ErrorClass `json:"error_class,omitempty"`
	Error      string     `json:"error,omitempty"`
	Millis     int64      `json:"millis"`
}

// ProvidersCheckReply answers RPCProvidersCheck.
type ProvidersCheckReply struct {
	RPCReply
	Providers []ProviderCheck `json:"providers"`
}

// StatusReply answers RPCStatus: the running worker's queue snapshot and
// provider health.
type StatusReply struct {
	RPCReply
	At               time.Time         `json:"at"`
	Consumer         string            `json:"consumer"`
	Pending          uint64            `json:"pending"`
	AckPending       int               `json:"ack_pending"`
	Redelivered      int               `json:"redelivered"`
	OldestPendingAge time.Duration     `json:"oldest_pending_age"`
	StreamMessages   uint64            `json:"stream_messages"`
	Results          uint64            `json:"results"`
	DeadLetters      uint64            `json:"dead_letters"`
	Providers        map[string]string `json:"providers,omitempty"` // name → "up", the check's error, or "unchecked"
	Ready            bool              `json:"ready"`
	NotReady         string            `json:"not_ready,omitempty"`
}

// ServiceResult is the latest result event about one service.
type ServiceResult struct {
	EventID       string     `json:"event_id"` // the result event's id
	Type          Type       `json:"type"`     // provisioning.succeeded / failed / dead_lettered
	At            time.Time  `json:"at"`
	SourceEventID string     `json:"source_event_id"`
	Action        Action     `json:"action,omitempty"`
	Provider      string     `json:"provider,omitempty"`
	Reference     string     `json:"reference,omitempty"`
	AlreadyDone   bool       `json:"already_done,omitempty"`
	Attempt       int        `json:"attempt"`
	WillRetry     bool       `json:"will_retry,omitempty"`
	ErrorClass    ErrorClass `json:"error_class,omitempty"`
	Error         string     `json:"error,omitempty"`
}

// DeadLetterRef names one dead-letter entry of a service.
type DeadLetterRef struct {
	Seq        uint64     `json:"seq"`
	EventID    string     `json:"event_id,omitempty"`
	EventType  Type       `json:"event_type,omitempty"`
	ErrorClass ErrorClass `json:"error_class,omitempty"`
	Reason     string     `json:"reason"`
	Attempts   int        `json:"attempts"`
	At         time.Time  `json:"at"`
}

// QueuedEvent is an event about a service that the worker has not finished
// (not yet acknowledged): its result is still to come.
type QueuedEvent struct {
	Seq     uint64 `json:"seq"` // in the events stream
	EventID string `json:"event_id"`
	Type    Type   `json:"type"`
}

// ServiceResultReply answers RPCServiceResult. Found is false when no result
// is known for the service (none yet, or older than the results stream
// keeps). Partial was set by workers that followed the results stream while
// they had not caught up; a worker now reads the service's newest result
// from the stream on each request and never sets it. Queued lists the service's unfinished events among
// the newest RPCQueuedScan unacknowledged ones: while it is not empty the
// service is "provisioning pending", whatever Last says.
type ServiceResultReply struct {
	RPCReply
	Found       bool            `json:"found"`
	Partial     bool            `json:"partial,omitempty"`
	Last        *ServiceResult  `json:"last,omitempty"`
	Queued      []QueuedEvent   `json:"queued,omitempty"`
	DeadLetters []DeadLetterRef `json:"dead_letters,omitempty"`
}

// RPCQueuedScan bounds how many unacknowledged events, newest first, a
// service-result request looks through for the service's queued events.
const RPCQueuedScan = 256

// Replayed is one dead letter replayed by RPCServiceRetry.
type Replayed struct {
	Seq      uint64 `json:"seq"`       // the dead-letter entry (now removed)
	EventSeq uint64 `json:"event_seq"` // the event's new sequence in the events stream
}

// ServiceRetryReply answers RPCServiceRetry. An empty Replayed with no
// Error means the service had no dead letter.
type ServiceRetryReply struct {
	RPCReply
	Replayed []Replayed `json:"replayed"`
}

// SSOReply answers RPCCometSSO: a Comet session for the service's user,
// started with the admin API AdminAccountSessionStartAsUser
// (POST /api/v1/admin/account/session-start-as-user, TargetUser →
// SessionKeyRegeneratedResponse; comet-go-sdk v25.9.6, cometsdk.go). The
// browser logs in by opening URL and posting
// {"msg":"session_login","username":Username,"sessionkey":SessionKey} to
// that window, as the official Comet WHMCS module's performServerLogin does
// (CometBackup/comet-whmcs-module functions.php, commit 7171d7f, 2025-03).
// SessionKey is the one secret a reply may carry: it logs in as that user
// and only that user, and it is never logged.
type SSOReply struct {
	RPCReply
	URL        string `json:"url,omitempty"`
	Username   string `json:"username,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
}
