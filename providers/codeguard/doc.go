// Package codeguard provisions CodeGuard website backup orders through the
// LogicBoxes / ResellerClub HTTP API (https://httpapi.com/api; test API
// https://test.httpapi.com/api). Provider honours the provider contract of
// package providers; Client makes the typed calls.
//
// # Wire format
//
// Every request carries auth-userid and api-key; the calling IP must be
// whitelisted in the reseller control panel. Reads are GET with the
// parameters in the query; writes are POST with the parameters in an
// application/x-www-form-urlencoded body (as the official ResellerClub WHMCS
// modules send them; the KB examples put them in the URL, which the API
// also accepts), so the api-key of a write never lands in a URL. Array
// parameters are repeated keys. Replies are JSON: objects, bare numbers
// (orderid.json, customers/signup.json), bare true/false or "Success…"
// strings; numbers may arrive as JSON strings and are read either way.
//
// Errors are {"status":"ERROR","message":…} on any HTTP status (also
// "error" in lower case, and an "error" key instead of "message"); the body
// is parsed whatever the status. An error body on 2xx or 4xx is permanent,
// on 5xx transient; 408, 425 and 429 stay transient and 429/503 honour
// Retry-After (providers.ClassifyStatus). Transport errors go through
// providers.ClassifyTransport, which drops the URL. The reply body is
// attached with events.WithReply, with the api-key redacted; a request is
// never put in an error or a log.
//
// # Endpoints used
//
//	GET  customers/details.json      username=<email>            customer look-up (signup)
//	POST customers/signup.json       username, passwd, name, company, address-line-1[, address-line-2],
//	                                 city, state, country, zipcode, phone-cc, phone, lang-pref → bare id
//	POST codeguard/add.json          domain-name, customer-id, plan-id, months, invoice-option[, auto-renew]
//	POST codeguard/renew.json        order-id, months, auto-renew, invoice-option
//	POST codeguard/modify.json       order-id, new-plan-id, months, invoice-option
//	POST codeguard/delete.json       order-id
//	GET  codeguard/details.json      order-id → currentstatus, endtime, planid, customerid, …
//	GET  codeguard/orderid.json      domain-name → bare order id
//	GET  codeguard/search.json       no-of-records, page-no[, order-id…, customer-id…, status…, domain-name]
//	POST orders/suspend.json         order-id, reason
//	POST orders/unsuspend.json       order-id
//	GET  products/customer-price.json [customer-id]                 (Client only)
//	GET  products/plan-details.json  → Check
//
// # Lifecycle
//
//   - signup_customer: the order for the domain is resolved first; a live
//     one (Active, InActive or Suspended) is success with AlreadyDone, never
//     a second add. Otherwise the customer is looked up by email and signed
//     up if absent, then add.json places the order. Outcome.Reference is the
//     order id; Details hold customer_id, domain, plan_id, months.
//   - renew: Prepare records {"order_id", "endtime_before",
//     "endtime_expected"}: endtime_before is the order's expiry, or where the
//     renewals of the order still in flight will leave it (claimed per order
//     in providers.Reservations, which the worker shares between replicas
//     through NATS KV); endtime_expected adds this renewal's months. Apply
//     re-reads endtime and reports AlreadyDone once it has reached
//     endtime_expected, waits (transient) while it is short of
//     endtime_before, and otherwise calls renew.json once. If renew.json's reply is lost (timeout,
//     dropped connection, 5xx) the expiry is re-read before the error is
//     returned and the error says whether the renewal took effect; the error
//     stays transient (the contract wants a lost reply reported), and the
//     retry then finds the moved expiry and reports AlreadyDone. Each
//     renewal is noted per order (providers.Ledger) as sent, before
//     renew.json, and as confirmed, with the expiries it moved between, so
//     a renewal dead-lettered and replayed after later renewals of the
//     order took effect tells its own effect from theirs: one that never
//     went through is planned again from today's expiry and renews once,
//     one that did is AlreadyDone (see ledger.go). Abandon, called by the
//     worker when a renewal is dead-lettered, drops it from its order's
//     chain at once.
//   - suspend / unsuspend / terminate resolve the order by domain and read
//     currentstatus: Suspended / not Suspended / Deleted (or no order at
//     all, for terminate) already reached is AlreadyDone.
//   - change_package: modify.json to the product's plan_id, unless the order
//     is on it already; months from op.Months or the billing cycle.
//   - change_password: permanent ErrUnsupported ("not supported: CodeGuard
//     orders have no password"). signup_reseller is unsupported too.
//
// An order is resolved by domain as: codeguard/orderid.json; if it names a
// deleted order, says there is none, or does not exist at this API (404
// without an error object), codeguard/search.json with domain-name and the
// live statuses decides, newest order first.
//
// # Inferred facts (design covers both readings)
//
//   - add.json's parameters are not published for CodeGuard; they are taken
//     from sibling products (SiteLock, SSL, Cloud Hosting add). auto-renew is
//     optional there, so it is sent only when the product sets
//     auto_renew=yes: with the default nothing beyond the five parameters
//     every sibling documents (domain-name, customer-id, plan-id, months,
//     invoice-option) is sent.
//   - orderid.json for CodeGuard appears in the LogicBoxes KB text the
//     project was seeded from but not in the cited public sources. If it is
//     missing (HTTP 404), search.json with domain-name is used instead. How
//     it says "no order" is not documented: an error whose message reads
//     like "doesn't exist" / "not found" / "No Entity found" (on any HTTP
//     status) counts as none and search.json confirms it; any other error is
//     returned, classified as above.
//   - customers/details.json answers an unknown username with an error
//     object; like the official WHMCS modules, an error body on 2xx/4xx (or
//     a not-found message on any status) is read as "no such customer" and
//     the customer is signed up. A signup rejected because the username
//     exists (a concurrent or lost earlier signup) is followed by a second
//     look-up.
//   - search.json's reply shape for CodeGuard is not published: the generic
//     LogicBoxes shape (recsonpage, recsindb, numbered entries with
//     "orders.orderid", "entity.currentstatus", … as flat or nested keys)
//     is read.
//   - Whether add.json refuses a second order for a domain, and what
//     suspending a suspended order answers, are not documented: the provider
//     never relies on either (it reads state first), and the fake
//     (codeguardtest) takes the harsher reading of both.
//   - LogicBoxes may process an action asynchronously (actionstatus other
//     than Success). A renewal still pending when endtime is re-read looks
//     "not applied"; a retry would then renew again. The delay between
//     attempts is the worker's retry back-off.
//   - How LogicBoxes moves endtime on renewal is not documented: calendar
//     months are assumed, within a slack of two days plus half a day per
//     month.
//
// # Customer fields
//
// username is the client's email. passwd comes from the PasswordSource and
// is fitted to both published LogicBoxes password policies (9–15
// characters, lower, upper, digit, symbol): a password that fits is sent as
// is, otherwise its first 11 usable characters plus "aA1_" (deterministic,
// so retries send the same one). phone-cc and phone are split from WHMCS's
// "+CC.NUMBER" format, else derived from the client's country. Fields WHMCS
// may lack get placeholders: company, address-line-1, city and state "N/A",
// zipcode "00000", phone "0000000000", lang-pref from the product's
// lang_pref, else the client's language if it is a code such as "en", else
// "en". A missing country is a permanent error (LogicBoxes validates it and
// no default is right).
//
// # Catalog settings
//
//	plan_id         required for signup_customer and change_package: positive integer
//	invoice_option  NoInvoice (default, from HOOKWORKER_CODEGUARD_INVOICE_OPTION), PayInvoice, KeepInvoice, OnlyAdd
//	auto_renew      yes / no (default no: WHMCS drives renewals)
//	lang_pref       customer language code (default "en")
package codeguard
