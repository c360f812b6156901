package comet

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
)

// sdkFieldNames reads the JSON field names per type from the field list
// copied from the official Comet Go SDK (testdata; source and version in
// its header).
func sdkFieldNames(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open("testdata/comet-go-sdk-v2.6.0-fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]map[string]bool{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			cur = strings.Trim(line, "[]")
			types[cur] = map[string]bool{}
		default:
			types[cur][strings.Fields(line)[0]] = true
		}
	}
	return types
}

// The client writes only fields the SDK has: the profile fields applyTo and
// the ownership marker set, the Storage Vault limit, and the policy the
// official module's "create policy group" option creates (issue 8 point 7).
func TestClientWritesSDKFields(t *testing.T) {
	types := sdkFieldNames(t)
	prof := profile{"Destinations": map[string]any{"d1": map[string]any{}}}
	r := restrictions{vaultQuota: gib, itemQuota: gib, maxDevices: 2, policyID: "p"}
	r.applyTo(prof)
	prof["AccountName"] = withMarker(events.Operation{Source: "s", ServiceID: 1}, prof, "hookworker:00")
	prof["IsSuspended"] = true // setSuspended
	for k := range prof {
		if !types["UserProfileConfig"][k] {
			t.Errorf("the client writes profile field %q; the SDK's UserProfileConfig has no such field", k)
		}
	}
	for k := range prof.destinations()["d1"].(map[string]any) {
		if !types["DestinationConfig"][k] {
			t.Errorf("the client writes Storage Vault field %q; the SDK's DestinationConfig has no such field", k)
		}
	}
	nested := map[string]string{"StorageVaultProviders": "StorageVaultProviderPolicy", "ProtectedItemEngineTypes": "ProtectedItemEngineTypePolicy"}
	for k, v := range policyRestrictions() {
		if !types["UserPolicy"][k] {
			t.Errorf("the policy sets %q; the SDK's UserPolicy has no such field", k)
		}
		if typ, ok := nested[k]; ok {
			for kk := range v.(map[string]any) {
				if !types[typ][kk] {
					t.Errorf("the policy sets %s.%q; the SDK's %s has no such field", k, kk, typ)
				}
			}
		}
	}
}
