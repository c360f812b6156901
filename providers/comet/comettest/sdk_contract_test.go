package comettest_test

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/providers/comet/comettest"
)

// sdkField is one field of an SDK type: its JSON name, Go type and whether
// the SDK omits it when empty.
type sdkField struct {
	name, goType string
	omitEmpty    bool
}

// sdkTypes reads the field list copied from the official Comet Go SDK
// (providers/comet/testdata; its header cites source and version).
func sdkTypes(t *testing.T) map[string][]sdkField {
	t.Helper()
	f, err := os.Open("../testdata/comet-go-sdk-v2.6.0-fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string][]sdkField{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			cur = strings.Trim(line, "[]")
		default:
			parts := strings.Fields(line)
			if cur == "" || len(parts) < 2 {
				t.Fatalf("bad field line %q", line)
			}
			types[cur] = append(types[cur], sdkField{name: parts[0], goType: parts[1], omitEmpty: slices.Contains(parts[2:], "omitempty")})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}

// jsonKind is the JSON kind a value of Go type goType encodes to.
func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case goType == "bool":
		return "bool"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "number"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "*"):
		return "" // any, or null
	}
	return "object" // maps and structs
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Number, float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return "?"
}

// checkAgainst fails for every field of got the SDK type does not have
// (other than comettest.FutureFields) or whose JSON kind differs; with
// complete, also for every SDK field (not omitempty) got lacks.
func checkAgainst(t *testing.T, types map[string][]sdkField, typ string, got map[string]any, complete bool) {
	t.Helper()
	fields, ok := types[typ]
	if !ok {
		t.Fatalf("no SDK type %s in the field list", typ)
	}
	byName := map[string]sdkField{}
	for _, f := range fields {
		byName[f.name] = f
	}
	for k, v := range got {
		f, ok := byName[k]
		switch {
		case !ok && slices.Contains(comettest.FutureFields, k):
		case !ok:
			t.Errorf("%s: the fake sends %q, a field the SDK's %s does not have", typ, k, typ)
		case v != nil && jsonKind(f.goType) != "" && kindOf(v) != jsonKind(f.goType):
			t.Errorf("%s.%s: the fake sends a JSON %s, the SDK has %s (%s)", typ, k, kindOf(v), f.goType, jsonKind(f.goType))
		}
	}
	if complete {
		for _, f := range fields {
			if _, ok := got[f.name]; !ok && !f.omitEmpty {
				t.Errorf("%s: the fake's reply lacks the SDK field %q", typ, f.name)
			}
		}
	}
}

// TestFakeFollowsTheSDK is the contract test of the fake (issue 8 point 7):
// every reply it gives uses the official SDK's field names and JSON kinds,
// and a user profile carries every UserProfileConfig field.
func TestFakeFollowsTheSDK(t *testing.T) {
	types := sdkTypes(t)
	s := newServer(t)
	call := func(op string, form url.Values) map[string]any {
		t.Helper()
		_, m, err := post(t, s, op, form)
		if err != nil || m == nil {
			t.Fatalf("%s: %v (body %v)", op, err, m)
		}
		return m
	}
	user := url.Values{"TargetUser": {"contract-user"}}
	checkAgainst(t, types, "CometAPIResponseMessage", call("add-user", url.Values{"TargetUser": {"contract-user"}, "TargetPassword": {"a-long-password"}}), true)
	checkAgainst(t, types, "CometAPIResponseMessage", call("get-user-profile", url.Values{"TargetUser": {"nobody-here"}}), true)
	vault := call("request-storage-vault", url.Values{"TargetUser": {"contract-user"}, "StorageProvider": {comettest.StorageTemplate}, "SelfAddress": {s.URL + "/"}})
	checkAgainst(t, types, "RequestStorageVaultResponseMessage", vault, false)

	profile := call("get-user-profile", user)
	checkAgainst(t, types, "UserProfileConfig", profile, true)
	dests, _ := profile["Destinations"].(map[string]any)
	if len(dests) != 1 {
		t.Fatalf("destinations %v", profile["Destinations"])
	}
	for _, d := range dests {
		checkAgainst(t, types, "DestinationConfig", d.(map[string]any), false)
	}
	withHash := call("get-user-profile-and-hash", user)
	checkAgainst(t, types, "GetProfileAndHashResponseMessage", withHash, true)
	checkAgainst(t, types, "UserProfileConfig", withHash["Profile"].(map[string]any), true)

	s.SetPolicy("contract-policy", map[string]any{"Description": "d", "Policy": map[string]any{"PreventDeleteStorageVault": true}})
	pol := call("policies/get", url.Values{"PolicyID": {"contract-policy"}})
	checkAgainst(t, types, "GetGroupPolicyResponse", pol, true)
	checkAgainst(t, types, "GroupPolicy", pol["Policy"].(map[string]any), false)
	checkAgainst(t, types, "UserPolicy", pol["Policy"].(map[string]any)["Policy"].(map[string]any), false)

	checkAgainst(t, types, "ServerMetaVersionInfo", call("meta/version", nil), false)
	checkAgainst(t, types, "SessionKeyRegeneratedResponse", call("account/session-start-as-user", user), true)
}
