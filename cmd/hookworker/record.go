package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/worker"
)

// cmdRecord shows operation records of the idempotency bucket by their
// readable operation key (whmcs:main:service:100:signup_customer) or by
// their bucket key (op.d2htY3M6…), which `nats kv get` needs.
func cmdRecord(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) < 1 || args[0] != "show" {
		return usageError{errors.New("want: hookworker record show <operation key>...")}
	}
	keys := args[1:]
	if len(keys) == 0 {
		return usageError{errors.New("record show: give one or more operation keys (as in result events' operation_key)")}
	}
	b, err := cfg.connect(nil, false)
	if err != nil {
		return err
	}
	defer b.close()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := b.js.KeyValue(qctx, worker.RecordsBucket)
	if err != nil {
		return fmt.Errorf("record show: bucket %s: %w (has a worker run once to create it?)", worker.RecordsBucket, err)
	}
	for _, k := range keys {
		opKey := operationKey(k)
		rec, err := worker.LoadRecord(qctx, kv, opKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("record show: no record of operation %q (bucket key %s): not processed yet, or older than HOOKWORKER_RECORD_TTL", opKey, worker.RecordKey(opKey))
		}
		if err != nil {
			return fmt.Errorf("record show %q: %w", opKey, err)
		}
		fmt.Fprintf(stdout, "# operation %s, bucket %s key %s\n", opKey, worker.RecordsBucket, worker.RecordKey(opKey))
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}

// operationKey turns a bucket key (op.<base64url>) back into its operation
// key; anything else is taken as an operation key.
func operationKey(k string) string {
	if enc, ok := strings.CutPrefix(k, "op."); ok {
		if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil && worker.RecordKey(string(b)) == k {
			return string(b)
		}
	}
	return k
}
