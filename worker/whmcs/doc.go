// Package whmcs is hookworker's WHMCS External API client and the
// write-back of result events into WHMCS.
//
// # Client
//
// Client POSTs to includes/api.php with identifier, secret (and accesskey
// when configured) and responsetype=json, and checks the reply's result, not
// the HTTP status: WHMCS answers most errors with HTTP 200 and
// result "error" (permanent *APIError); HTTP 403 means the credentials, the
// API role or the IP allowlist (permanent, ErrAuth); 5xx, 408, 425, 429,
// timeouts and connection errors are transient. Redirects are never
// followed (a redirected POST loses its form or re-sends the secret). The
// client never logs, and its errors carry WHMCS's message only: never the
// secret, the access key or a reply's data (GetClientsProducts replies hold
// service passwords). It refuses every Module* action (ErrForbiddenAction):
// they run the provisioning module and fire the very hooks that publish
// hookworker's events (WHMCS 7.8 includes/api/modulecreate.php runs
// ServerCreateAccount, which fires PreModuleCreate/AfterModuleCreate;
// ../shared/reference/whmcs.md §6.3). Client.ServicePassword is the
// providers' password source when the WHMCS API is configured; it has no
// password for a reseller signup on ClientAdd (no service, ErrNoService),
// so wrap it with FallbackPasswords(client, derivedPasswords).
//
// # Write-back rules (Writer.Apply)
//
// provisioning.succeeded:
//   - a signup with a service (service_id > 0): GetClientsProducts, then
//     UpdateClientProduct with status=Active when the service is still
//     Pending (a service that is Active keeps its status; one that has since
//     been suspended, terminated or cancelled is never brought back to
//     Active by a late or replayed result) and, for the account providers
//     (comet, storegrid, sandbox), serviceusername=Reference. For codeguard
//     (and any other provider, whose Reference is an order id, not a login)
//     the line "<provider> reference: <Reference>" is appended to the
//     service's admin notes once, keeping what the admin wrote there.
//     Lifecycle results (renew, suspend, unsuspend, terminate, change
//     password/package) change no service field: WHMCS set the status
//     itself when it ran the module command whose hook produced the event.
//     A reseller signup on ClientAdd has no service: no UpdateClientProduct.
//   - WriteBack["Pass Key"] → the client custom field with id
//     HOOKWORKER_WHMCS_PASSKEY_FIELD_ID, with UpdateClient customfields =
//     base64(serialize(array(id => value))). When no id is configured (or a
//     provider returns another field name) the value is not stored, a sticky
//     note tells the admin to fetch it from the provider, and the activity
//     line names the field. The value itself never appears in a log, an
//     error, a note or the activity log: it goes to WHMCS's field only.
//   - LogActivity "hookworker: <action> at <provider> succeeded: <reference>
//     (service #N) [hw:<tag>]".
//
// provisioning.dead_lettered, and provisioning.failed with will_retry=false
// or error_class=permanent: AddClientNote (sticky, so the admin sees it on
// every page of the client) with the error, the source event and what to do,
// then LogActivity. No note without a client id (the log line only).
//
// provisioning.failed with will_retry=true (transient): LogActivity for the
// first attempt only ("failed, will retry"), nothing for later attempts: the
// operation's final outcome arrives as its own result, and a line per retry
// would flood the activity log.
//
// # Idempotency
//
// WHMCS's API has no idempotency key, so the Writer keeps a record per
// result event in the key-value bucket it is given, under
// "writeback.<sha256(result event id)>": the steps done, the step started
// and whether the result is complete. Every write is a compare-and-set on
// the record's revision, so two workers never both work on one result. A
// complete record makes a replay or redelivery a no-op. Steps that are
// idempotent (UpdateClientProduct, UpdateClient) are simply repeated after a
// failure. The two that are not (AddClientNote, LogActivity) are recorded
// as "started" before the call and "done" after it; a call that WHMCS
// answered with an error, or that never left (connection refused), clears
// "started", since it had no effect.
//
// What remains is the window in which a call was sent and its outcome is
// unknown: no reply (timeout, dropped connection; the error matches
// ErrOutcomeUnknown), or a crash or lost KV write between WHMCS's reply and
// the "done" record. A retry that finds such a step "started":
//   - LogActivity: asks GetActivityLog for the line's unique [hw:<tag>] and
//     writes the line only if it is not there. This is exactly once, except
//     if the first request is still being processed by WHMCS when the
//     lookup runs (a request that outlived its client timeout).
//   - AddClientNote: WHMCS has no API that lists client notes, so it cannot
//     tell; the note is not sent again (at most once), a warning is logged
//     and hookworker_writeback_total{action="AddClientNote",
//     outcome="skipped_in_doubt"} counts it. The activity log line, written
//     after the note, still records the failure.
//
// Records live as long as the bucket keeps them (its TTL): a result
// replayed after its record expired is written back again.
//
// # Run
//
// Run consumes the results stream with a durable pull consumer
// (HOOKWORKER_WHMCS_WRITEBACK_CONSUMER, FilterSubject hookworker.results.>,
// explicit acks, DeliverAll, MaxDeliver unlimited), retries Apply in process
// with backoff, acks after success, nak's with a growing delay on a
// transient failure, and terminates a message on a permanent one (except an
// authentication failure, which is retried: it is the configuration's
// fault, not the message's).
//
// # Environment (prefix HOOKWORKER_WHMCS_)
//
//	API_URL                   https://<whmcs>/includes/api.php; empty = write-back off
//	IDENTIFIER, SECRET        API credentials (System Settings → API Credentials)
//	ACCESS_KEY                optional $api_access_key, instead of IP allowlisting
//	TIMEOUT                   one API call (default 15s)
//	TLS_INSECURE_SKIP_VERIFY  default false
//	PASSKEY_FIELD_ID          id of the client custom field 'Pass Key' (0: not stored)
//	WRITEBACK_CONSUMER        durable consumer name (default hookworker-writeback)
//
// The WHMCS API role needs: UpdateClientProduct, UpdateClient,
// AddClientNote, LogActivity, GetClientsProducts, GetActivityLog.
package whmcs
