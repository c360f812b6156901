// Package events holds hookworker's domain types: the versioned JSON envelope
// that WHMCS hooks publish, the payload of each event type, the result events
// the worker publishes for every outcome, the operations an event becomes, and
// the NATS subjects all of them travel on.
//
// Everything here is plain data with validation; nothing in this package talks
// to NATS or to a provider. Nothing in this package ever carries a secret: no
// service password, provider credential or API key has a field here.
package events
