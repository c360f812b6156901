// Package worker is hookworker's transport: it consumes WHMCS events from
// NATS JetStream, turns each into operations through the catalog, runs them
// at the providers with retries, records each operation's outcome in a
// JetStream key-value bucket so that it is applied at most once, publishes a
// result event for every outcome, and moves events that cannot succeed to a
// dead-letter stream from which ops can replay them.
//
// Guarantees:
//   - An event is acknowledged only after every one of its operations has
//     succeeded (and its result was published) or it was stored in the
//     dead-letter stream. Nothing is dropped: a malformed message is
//     dead-lettered, not discarded, and never blocks the messages behind it.
//   - An operation recorded as done is never applied again; its recorded
//     result is re-published. An operation whose earlier attempt may have
//     reached the provider (a crash, a lost reply) is looked up at the
//     provider before it is applied again.
//   - Shutdown stops fetching, lets in-flight work finish within the
//     shutdown timeout, and naks what could not finish; acks are never sent
//     on a cancelled context.
package worker
