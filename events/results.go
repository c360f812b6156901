package events

import (
	"encoding/json"
	"time"
)

// Outcome names used in result subjects and metrics.
const (
	OutcomeSucceeded    = "succeeded"
	OutcomeFailed       = "failed"
	OutcomeDeadLettered = "dead_lettered"
)

// ResultData is the payload of every result event. It names the source
// event, the operation, the provider and what happened. It never carries a
// secret; WriteBack holds only the values WHMCS must store (e.g. a pass key).
type ResultData struct {
	SourceEventID   string            `json:"source_event_id"`
	SourceEventType Type              `json:"source_event_type"`
	OperationKey    string            `json:"operation_key"`
	Action          Action            `json:"action"`
	Provider        string            `json:"provider"`
	ProductID       int               `json:"product_id,omitempty"`
	ServiceID       int               `json:"service_id,omitempty"`
	ClientID        int               `json:"client_id,omitempty"`
	Reference       string            `json:"reference,omitempty"`
	AlreadyDone     bool              `json:"already_done,omitempty"`
	Attempt         int               `json:"attempt"`
	WillRetry       bool              `json:"will_retry,omitempty"`
	ErrorClass      ErrorClass        `json:"error_class,omitempty"`
	Error           string            `json:"error,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
	WriteBack       map[string]string `json:"write_back,omitempty"`
}

func (d *ResultData) validate() error {
	if d.SourceEventID == "" {
		return fieldErr("data.source_event_id", "is required")
	}
	if d.OperationKey == "" && d.Action != "" {
		return fieldErr("data.operation_key", "is required")
	}
	return nil
}

// ResultType returns the result event type for an outcome name.
func ResultType(outcome string) Type {
	switch outcome {
	case OutcomeSucceeded:
		return ProvisioningSucceeded
	case OutcomeDeadLettered:
		return ProvisioningDeadLettered
	default:
		return ProvisioningFailed
	}
}

// Attempt records one try at an operation, for the operator.
type Attempt struct {
	Number     int        `json:"number"`
	At         time.Time  `json:"at"`
	Operation  string     `json:"operation,omitempty"`
	ErrorClass ErrorClass `json:"error_class,omitempty"`
	Error      string     `json:"error,omitempty"`
	Reply      string     `json:"provider_reply,omitempty"`
}

// DeadLetter is one entry of the dead-letter stream: the original message
// exactly as received, where it came from, why it failed and every attempt.
// Replaying it republishes Event (or Raw) to Subject unchanged, so the
// event keeps its idempotency key.
type DeadLetter struct {
	EventID        string          `json:"event_id,omitempty"`
	EventType      Type            `json:"event_type,omitempty"`
	Source         string          `json:"source,omitempty"`
	Subject        string          `json:"subject"`
	StreamSequence uint64          `json:"stream_sequence"`
	MsgID          string          `json:"msg_id,omitempty"`
	Event          json.RawMessage `json:"event,omitempty"` // the original message when it was JSON
	Raw            []byte          `json:"raw,omitempty"`   // the original bytes when they were not JSON
	ErrorClass     ErrorClass      `json:"error_class"`
	Reason         string          `json:"reason"`
	Operations     []string        `json:"operations,omitempty"` // the keys that failed
	Attempts       []Attempt       `json:"attempts,omitempty"`
	Deliveries     uint64          `json:"deliveries"`
	DeadLetteredAt time.Time       `json:"dead_lettered_at"`
	// OriginalSize and OriginalSHA256 (hex) describe the message exactly as
	// received, whether or not the entry holds all of it.
	OriginalSize   int    `json:"original_size,omitempty"`
	OriginalSHA256 string `json:"original_sha256,omitempty"`
	// Truncated says the message was too large to fit in an entry under the
	// server's max payload: Raw holds only its first bytes, and the whole
	// message is in the events stream at StreamSequence until it ages out.
	Truncated bool `json:"truncated,omitempty"`
}

// Original returns the message bytes exactly as they were first received,
// or only their first bytes when Truncated is set.
func (d DeadLetter) Original() []byte {
	if len(d.Event) > 0 {
		return d.Event
	}
	return d.Raw
}
