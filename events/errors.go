package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrorClass says whether retrying can help.
type ErrorClass string

// The two error classes. Every error the worker sees is classified exactly
// once, where it is first understood (the provider client, the decoder, the
// router), and the class travels with it.
const (
	// Transient errors may succeed on retry: timeouts, connection errors,
	// 5xx, 429.
	Transient ErrorClass = "transient"
	// Permanent errors will fail again however often they are retried:
	// validation errors, 4xx, unknown product, malformed event.
	Permanent ErrorClass = "permanent"
)

// ClassifiedError carries an error's class, an optional delay the far side
// asked for (Retry-After), and the provider's reply when there was one.
type ClassifiedError struct {
	Class      ErrorClass
	RetryAfter time.Duration
	// Reply is the provider's reply body, trimmed, for the operator; never a
	// request (requests carry credentials).
	Reply string
	Err   error
}

// Error is the wrapped error's message: the class does not change it.
func (e *ClassifiedError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error, for errors.Is and errors.As.
func (e *ClassifiedError) Unwrap() error { return e.Err }

// AsTransient marks err as transient. retryAfter is the delay the far side
// asked for, or zero.
func AsTransient(err error, retryAfter time.Duration) error {
	if err == nil {
		return nil
	}
	return &ClassifiedError{Class: Transient, RetryAfter: retryAfter, Err: err}
}

// AsPermanent marks err as permanent.
func AsPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &ClassifiedError{Class: Permanent, Err: err}
}

// WithReply attaches the provider's reply body (trimmed to 2 KiB) to a
// classified error, keeping its class.
func WithReply(err error, reply string) error {
	if err == nil {
		return nil
	}
	if len(reply) > 2048 {
		reply = reply[:2048] + "…"
	}
	var ce *ClassifiedError
	if errors.As(err, &ce) {
		c := *ce
		c.Reply = reply
		c.Err = err
		return &c
	}
	return &ClassifiedError{Class: ClassOf(err), Reply: reply, Err: err}
}

// Permanentf formats a permanent error.
func Permanentf(format string, args ...any) error {
	return AsPermanent(fmt.Errorf(format, args...))
}

// ClassOf returns err's class. An error nobody classified is judged by what
// it is: malformed events are permanent; timeouts, cancelled deadlines and
// network errors are transient; anything else unknown is transient, so that
// it is retried a bounded number of times and then dead-lettered rather than
// dropped.
func ClassOf(err error) ErrorClass {
	var ce *ClassifiedError
	switch {
	case errors.As(err, &ce):
		return ce.Class
	case errors.Is(err, ErrMalformed):
		return Permanent
	case errors.Is(err, context.DeadlineExceeded):
		return Transient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Transient
	}
	return Transient
}

// RetryAfterOf returns the delay the far side asked for, or zero.
func RetryAfterOf(err error) time.Duration {
	var ce *ClassifiedError
	if errors.As(err, &ce) {
		return ce.RetryAfter
	}
	return 0
}

// ReplyOf returns the provider reply attached to err, or "".
func ReplyOf(err error) string {
	var ce *ClassifiedError
	if errors.As(err, &ce) {
		return ce.Reply
	}
	return ""
}
