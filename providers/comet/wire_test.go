package comet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
)

func TestSignupWireFormat(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]string
		wantOps  []string
		// wantAgain are the ops of a second Apply: reads only.
		wantAgain []string
	}{{
		name:      "plain",
		settings:  nil,
		wantOps:   []string{"get-user-profile", "get-user-profile", "add-user", "get-user-profile-and-hash", "set-user-profile-hash"},
		wantAgain: []string{"get-user-profile", "get-user-profile-and-hash"},
	}, {
		name:     "configured",
		settings: configured,
		wantOps: []string{"get-user-profile", "get-user-profile", "add-user", // Prepare's probe, Apply's
			// The fake answers a missing policy with HTTP 404: the client
			// confirms with policies/list before creating it.
			"policies/get", "policies/list", "policies/set",
			"get-user-profile-and-hash", "request-storage-vault",
			"get-user-profile-and-hash", "set-user-profile-hash"},
		wantAgain: []string{"get-user-profile", "policies/get", "get-user-profile-and-hash", "get-user-profile-and-hash"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			opts := configuredOpts
			if tc.settings == nil { // no Storage Vault: no vault quota either
				opts = map[string]string{"number_of_devices": "3", "protected_item_quota_tb": "1"}
			}
			o := e.prepared(t, op(events.SignupCustomer, 1, tc.settings, opts))
			name := o.Plan[comet.PlanUsername]
			if !strings.HasPrefix(name, "hw") || len(name) != 12 {
				t.Fatalf("planned username %q, want hw + 10 characters", name)
			}
			out := e.apply(t, o)
			if out.Reference != name || out.AlreadyDone || out.Details["username"] != name {
				t.Fatalf("outcome %+v, want reference %q, not already done", out, name)
			}
			if got := e.srv.Ops(); !slices.Equal(got, tc.wantOps) {
				t.Fatalf("ops\n got %q\nwant %q", got, tc.wantOps)
			}
			for _, r := range e.srv.Requests() {
				if r.Method != http.MethodPost || r.Path != "/api/v1/admin/"+r.Op || r.ContentType != "application/x-www-form-urlencoded" {
					t.Errorf("%s: %s %s (%s), want a form POST to /api/v1/admin/%s", r.Op, r.Method, r.Path, r.ContentType, r.Op)
				}
				if r.Form.Get("Username") != comettest.DefaultUsername || r.Form.Get("AuthType") != "Password" || r.Form.Get("Password") != "REDACTED" {
					t.Errorf("%s: auth fields %q/%q/%q, want admin/Password/(sent)", r.Op,
						r.Form.Get("Username"), r.Form.Get("AuthType"), r.Form.Get("Password"))
				}
				if strings.Contains(r.Op, "user") && r.Op != "list-users" && r.Form.Get("TargetUser") != name {
					t.Errorf("%s: TargetUser %q, want %q", r.Op, r.Form.Get("TargetUser"), name)
				}
				switch r.Op {
				case "add-user":
					want := map[string]string{"TargetPassword": "REDACTED", "StoreRecoveryCode": "1", "RequirePasswordChange": ""}
					if tc.settings != nil {
						want["RequirePasswordChange"] = "1"
					}
					for k, v := range want {
						if got := r.Form.Get(k); got != v {
							t.Errorf("add-user %s = %q, want %q", k, got, v)
						}
					}
				case "request-storage-vault":
					if r.Form.Get("StorageProvider") != comettest.StorageTemplate || r.Form.Get("SelfAddress") != e.srv.URL+"/" || r.Form.Get("ProfileHash") == "" {
						t.Errorf("request-storage-vault form %v", r.Form)
					}
				case "set-user-profile-hash":
					if r.Form.Get("RequireHash") == "" || r.Form.Get("ProfileData") == "" {
						t.Errorf("set-user-profile-hash form %v", r.Form)
					}
				case "policies/get", "policies/set":
					if r.Form.Get("PolicyID") != configured[comet.SettingPolicyGroupID] {
						t.Errorf("%s PolicyID %q", r.Op, r.Form.Get("PolicyID"))
					}
				}
			}
			if !e.srv.CheckPassword(name, e.servicePassword(t, o)) {
				t.Error("the user's password is not the service password")
			}
			if u := e.user(t, name); !u.RecoveryCode {
				t.Error("user created without a recovery code")
			}

			n := len(e.srv.Ops())
			again := e.apply(t, o)
			if !again.AlreadyDone || again.Reference != name {
				t.Fatalf("second Apply %+v, want AlreadyDone with the same reference", again)
			}
			if got := e.srv.Ops()[n:]; !slices.Equal(got, tc.wantAgain) {
				t.Fatalf("second Apply ops\n got %q\nwant %q", got, tc.wantAgain)
			}
			if e.srv.Created() != 1 {
				t.Fatalf("created %d users", e.srv.Created())
			}
		})
	}
}

func TestQuotas(t *testing.T) {
	const (
		gib = int64(1) << 30
		tib = int64(1) << 40
	)
	for _, tc := range []struct {
		name    string
		opts    map[string]string
		want    quotas
		wantErr string
	}{
		{"none", nil, quotas{}, ""},
		{"zero means unset", map[string]string{"protected_item_quota_gb": "0", "number_of_devices": "0", "storage_vault_quota_gb": "0"}, quotas{}, ""},
		{"GB", map[string]string{"protected_item_quota_gb": "100", "storage_vault_quota_gb": "50", "number_of_devices": "5"},
			quotas{true, 100 * gib, 5, true, 50 * gib}, ""},
		{"TB", map[string]string{"protected_item_quota_tb": "2", "storage_vault_quota_tb": "3"},
			quotas{true, 2 * tib, 0, true, 3 * tib}, ""},
		{"spaces", map[string]string{"protected_item_quota_gb": " 7 "}, quotas{true, 7 * gib, 0, false, 0}, ""},
		{"not a number", map[string]string{"storage_vault_quota_gb": "lots"}, quotas{}, `config option "storage_vault_quota_gb": want a whole number`},
		{"negative", map[string]string{"number_of_devices": "-1"}, quotas{}, `config option "number_of_devices"`},
		{"GB and TB", map[string]string{"protected_item_quota_gb": "1", "protected_item_quota_tb": "1"}, quotas{}, `"protected_item_quota_gb" and "protected_item_quota_tb" are both set`},
		{"overflow", map[string]string{"storage_vault_quota_tb": "9000000"}, quotas{}, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			settings := map[string]string{comet.SettingStorageVaultTemplate: comettest.StorageTemplate}
			o := op(events.SignupCustomer, 1, settings, tc.opts)
			if tc.wantErr != "" {
				_, perr := e.p.Prepare(testCtx(t), o)
				_, aerr := e.p.Apply(testCtx(t), o)
				for _, err := range []error{perr, aerr} {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) || events.ClassOf(err) != events.Permanent {
						t.Fatalf("err %v (%s), want a permanent error containing %q", err, events.ClassOf(err), tc.wantErr)
					}
				}
				if n := len(e.srv.Ops()); n != 0 {
					t.Fatalf("%d calls made for an invalid option", n)
				}
				return
			}
			o = e.prepared(t, o)
			name := e.apply(t, o).Reference
			if got := profileQuotas(t, e.user(t, name)); got != tc.want {
				t.Fatalf("profile quotas %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("change package", func(t *testing.T) {
		e := newEnv(t)
		settings := map[string]string{comet.SettingStorageVaultTemplate: comettest.StorageTemplate}
		name := e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, settings, map[string]string{
			"storage_vault_quota_gb": "100", "protected_item_quota_gb": "10", "number_of_devices": "2"}))).Reference
		// The new package drops the vault option (the vault limit stays,
		// as in the official module) and moves to TB.
		o := e.prepared(t, op(events.ChangePackage, 1, settings, map[string]string{"protected_item_quota_tb": "1", "number_of_devices": "4"}))
		if out := e.apply(t, o); out.AlreadyDone {
			t.Fatal("change package reported AlreadyDone although quotas changed")
		}
		if got, want := profileQuotas(t, e.user(t, name)), (quotas{true, tib, 4, true, 100 * gib}); got != want {
			t.Fatalf("after change package %+v, want %+v", got, want)
		}
		if out := e.apply(t, o); !out.AlreadyDone {
			t.Fatal("repeated change package did not report AlreadyDone")
		}
		if n := e.srv.Count("request-storage-vault"); n != 1 {
			t.Fatalf("request-storage-vault called %d times, want 1", n)
		}
	})
}

type quotas struct {
	itemOn    bool
	itemBytes int64
	devices   int64
	vaultOn   bool
	vaultB    int64
}

func profileQuotas(t *testing.T, u comettest.User) quotas {
	t.Helper()
	num := func(v any) int64 {
		n, err := v.(json.Number).Int64()
		if err != nil {
			t.Fatalf("not an integer: %v", v)
		}
		return n
	}
	q := quotas{itemOn: u.Profile["AllProtectedItemsQuotaEnabled"].(bool), itemBytes: num(u.Profile["AllProtectedItemsQuotaBytes"]),
		devices: num(u.Profile["MaximumDevices"])}
	for _, d := range u.Profile["Destinations"].(map[string]any) {
		dm := d.(map[string]any)
		q.vaultOn, q.vaultB = dm["StorageLimitEnabled"].(bool), num(dm["StorageLimitBytes"])
	}
	return q
}

func TestUnknownFieldsPreserved(t *testing.T) {
	e := newEnv(t)
	settings := map[string]string{comet.SettingStorageVaultTemplate: comettest.StorageTemplate}
	o := e.prepared(t, op(events.SignupCustomer, 1, settings, nil))
	name := o.Plan[comet.PlanUsername]
	// Created by hand first, so that the signup reads a profile it did not write.
	if err := e.srv.AddUser(name, e.servicePassword(t, o)); err != nil {
		t.Fatal(err)
	}
	e.srv.Mutate(name, func(p map[string]any) { p["AccountName"] = "Ada <Lovelace> & Co" })
	before := e.user(t, name).Profile

	e.apply(t, o)
	e.srv.ConflictNext() // one write races with a concurrent edit
	for _, a := range []events.Action{events.Suspend, events.Unsuspend, events.ChangePackage} {
		e.apply(t, e.prepared(t, op(a, 1, settings, map[string]string{"storage_vault_quota_gb": "5", "number_of_devices": "2"})))
	}
	after := e.user(t, name).Profile
	if an := after["AccountName"]; an != "Ada <Lovelace> & Co ["+comet.ServiceMarker(o)+"]" {
		t.Errorf("AccountName %q, want the admin's name followed by the service marker", an)
	}
	for _, k := range []string{"SomeFutureField", "CreationGUID", "CreateTime", "PasswordHash", "Username", "Emails", "Sources"} {
		if !reflect.DeepEqual(before[k], after[k]) {
			t.Errorf("%s changed: before %#v, after %#v", k, before[k], after[k])
		}
	}
	if big := after["SomeFutureField"].(map[string]any)["Big"]; fmt.Sprint(big) != "9007199254740993" {
		t.Errorf("a 64-bit number lost precision: %v", big)
	}
	if after["ConcurrentEdits"] == nil {
		t.Error("the concurrent edit was lost: the retry did not re-read the profile")
	}
	dests := after["Destinations"].(map[string]any)
	if len(dests) != 1 {
		t.Fatalf("%d destinations, want 1", len(dests))
	}
	for id, d := range dests {
		if got := d.(map[string]any)["SomeFutureDestinationField"]; !reflect.DeepEqual(got, map[string]any{"Keep": "me"}) {
			t.Errorf("destination %s lost its unknown field: %#v", id, got)
		}
	}
}

func TestVaultRequestedOnce(t *testing.T) {
	settings := map[string]string{comet.SettingStorageVaultTemplate: comettest.StorageTemplate}
	t.Run("repeated signup", func(t *testing.T) {
		e := newEnv(t)
		o := e.prepared(t, op(events.SignupCustomer, 1, settings, nil))
		for range 3 {
			e.apply(t, o)
		}
		e.apply(t, e.prepared(t, op(events.ChangePackage, 1, settings, nil)))
		if n := e.srv.Count("request-storage-vault"); n != 1 {
			t.Fatalf("request-storage-vault called %d times, want 1", n)
		}
	})
	t.Run("reply lost", func(t *testing.T) {
		e := newEnv(t)
		o := op(events.SignupCustomer, 1, settings, nil)
		o.CustomUsername = "existing-user"
		if err := e.srv.AddUser(o.CustomUsername, "password-1"); err != nil {
			t.Fatal(err)
		}
		// this service's user (an earlier attempt created and marked it)
		e.srv.Mutate(o.CustomUsername, func(p map[string]any) { p["AccountName"] = "[" + comet.ServiceMarker(o) + "]" })
		o = e.prepared(t, o)
		e.srv.DropAfterEffect() // the first write is request-storage-vault
		if _, err := e.p.Apply(testCtx(t), o); err == nil || events.ClassOf(err) != events.Transient {
			t.Fatalf("Apply with a lost reply = %v, want a transient error", err)
		}
		out := e.apply(t, o)
		if out.Reference != "existing-user" {
			t.Fatalf("reference %q", out.Reference)
		}
		if n := len(e.user(t, "existing-user").Profile["Destinations"].(map[string]any)); n != 1 {
			t.Fatalf("%d storage vaults after a lost reply and a retry, want 1", n)
		}
		if n := e.srv.Count("request-storage-vault"); n != 1 {
			t.Fatalf("request-storage-vault called %d times, want 1", n)
		}
		if e.srv.Created() != 1 || e.srv.Count("add-user") != 0 {
			t.Fatalf("an existing user was created again (created %d, add-user %d)", e.srv.Created(), e.srv.Count("add-user"))
		}
	})
}

func TestHashConflict(t *testing.T) {
	t.Run("retried on a fresh read", func(t *testing.T) {
		e := newEnv(t)
		name := e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, nil, nil))).Reference
		sets := e.srv.Count("set-user-profile-hash")
		e.srv.ConflictNext()
		out := e.apply(t, e.prepared(t, op(events.Suspend, 1, nil, nil)))
		if out.AlreadyDone {
			t.Fatal("suspend reported AlreadyDone")
		}
		if n := e.srv.Count("set-user-profile-hash") - sets; n != 2 {
			t.Fatalf("%d set-user-profile-hash calls, want 2 (one conflict, one retry)", n)
		}
		u := e.user(t, name)
		if !u.Suspended() || fmt.Sprint(u.Profile["ConcurrentEdits"]) != "1" {
			t.Fatalf("after retry: suspended %v, concurrent edits %v", u.Suspended(), u.Profile["ConcurrentEdits"])
		}
	})
	t.Run("bounded", func(t *testing.T) {
		e := newEnv(t)
		e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, nil, nil)))
		sets := e.srv.Count("set-user-profile-hash")
		for range 10 {
			e.srv.ConflictNext()
		}
		_, err := e.p.Apply(testCtx(t), e.prepared(t, op(events.Suspend, 1, nil, nil)))
		if err == nil || events.ClassOf(err) != events.Transient || !strings.Contains(err.Error(), "changed concurrently") {
			t.Fatalf("err %v (%s), want a transient 'changed concurrently' error", err, events.ClassOf(err))
		}
		if n := e.srv.Count("set-user-profile-hash") - sets; n != 4 {
			t.Fatalf("%d attempts, want 4", n)
		}
	})
	t.Run("other write errors are not retried", func(t *testing.T) {
		e := newEnv(t)
		e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, nil, nil)))
		sets := e.srv.Count("set-user-profile-hash")
		url := wrapped(t, e.srv, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/set-user-profile-hash") {
				_, _ = w.Write([]byte(`{"Status":400,"Message":"Invalid profile"}`))
				return true
			}
			return false
		})
		e2 := newEnvAt(t, e.srv, url)
		_, err := e2.p.Apply(testCtx(t), e2.prepared(t, op(events.Suspend, 1, nil, nil)))
		if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "Invalid profile") {
			t.Fatalf("err %v, want the permanent 'Invalid profile' error", err)
		}
		if n := e.srv.Count("get-user-profile-and-hash"); n < 2 {
			t.Fatalf("the profile was not re-read to tell a conflict from another error")
		}
		if n := e.srv.Count("set-user-profile-hash") - sets; n != 0 {
			t.Fatalf("the fake saw %d writes; the wrapper should have answered them", n)
		}
	})
}

func TestErrorStyles(t *testing.T) {
	for _, tc := range []struct {
		status     int
		inBody     bool
		class      events.ErrorClass
		retryAfter time.Duration
	}{
		{400, false, events.Permanent, 0},
		{403, false, events.Permanent, 0},
		{404, false, events.Permanent, 0},
		{429, false, events.Transient, time.Second},
		{500, false, events.Transient, 0},
		{503, false, events.Transient, time.Second},
		{400, true, events.Permanent, 0},
		{403, true, events.Permanent, 0},
		{429, true, events.Transient, time.Second},
		{500, true, events.Transient, 0},
		{502, true, events.Transient, 0},
	} {
		style := "HTTP"
		if tc.inBody {
			style = "body"
		}
		t.Run(fmt.Sprintf("%s %d", style, tc.status), func(t *testing.T) {
			e := newEnv(t)
			if tc.inBody {
				e.srv.FailNextBody(1, tc.status)
			} else {
				e.srv.FailNext(1, tc.status)
			}
			err := e.p.Check(testCtx(t))
			if err == nil {
				t.Fatal("Check succeeded against an error reply")
			}
			if c := events.ClassOf(err); c != tc.class {
				t.Errorf("class %s, want %s: %v", c, tc.class, err)
			}
			if ra := events.RetryAfterOf(err); ra != tc.retryAfter {
				t.Errorf("retry after %s, want %s", ra, tc.retryAfter)
			}
			var ae *comet.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.InBody != tc.inBody || ae.Op != "meta/version" {
				t.Fatalf("APIError %+v, want status %d in body %v", ae, tc.status, tc.inBody)
			}
			if !strings.Contains(err.Error(), "comettest: injected failure") || !strings.Contains(err.Error(), "comet meta/version") {
				t.Errorf("error %q lacks the op or Comet's message", err)
			}
			if !strings.Contains(events.ReplyOf(err), `"Status":`) {
				t.Errorf("reply %q not attached", events.ReplyOf(err))
			}
			if got := errors.Is(err, comet.ErrUnauthorized); got != (tc.status == 403) {
				t.Errorf("errors.Is(ErrUnauthorized) = %v", got)
			}
			if err := e.p.Check(testCtx(t)); err != nil {
				t.Fatalf("Check after the failure: %v", err)
			}
		})
	}
}

func TestPolicyGroup(t *testing.T) {
	const id = "hookworker-test-policy"
	settings := map[string]string{comet.SettingPolicyGroupID: id, comet.SettingCreatePolicyGroup: "yes"}
	wantPolicy := `{"Description":"hookworker-test-policy","Policy":{"ModeAdminResetPassword":3,"PreventAddCustomStorageVault":true,` +
		`"PreventChangeAccountPassword":true,"PreventDeleteStorageVault":true,"PreventRequestStorageVault":true,` +
		`"ProtectedItemEngineTypes":{"AllowedEngineTypeWhenRestricted":[],"ShouldRestrictEngineTypeList":false},` +
		`"StorageVaultProviders":{"AllowedProvidersWhenRestricted":[1003],"ShouldRestrictProviderList":true}}}`
	t.Run("created with our id", func(t *testing.T) {
		e := newEnv(t)
		name := e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, settings, nil))).Reference
		pol, ok := e.srv.Policy(id)
		if !ok {
			t.Fatal("policy not created")
		}
		if got, _ := json.Marshal(pol); string(got) != wantPolicy {
			t.Fatalf("policy\n got %s\nwant %s", got, wantPolicy)
		}
		if got := e.user(t, name).Profile["PolicyID"]; got != id {
			t.Fatalf("user PolicyID %v, want %q", got, id)
		}
		for _, r := range e.srv.Requests() {
			if r.Op == "policies/set" && (r.Form.Get("PolicyID") != id || r.Form.Get("CheckPolicyHash") != "") {
				t.Fatalf("policies/set form %v", r.Form)
			}
		}
		e.apply(t, e.prepared(t, op(events.SignupCustomer, 2, settings, nil)))
		if n := e.srv.Count("policies/set"); n != 1 {
			t.Fatalf("policies/set called %d times for two signups, want 1", n)
		}
	})
	t.Run("existing policy updated, its other fields kept", func(t *testing.T) {
		e := newEnv(t)
		e.srv.SetPolicy(id, map[string]any{"Description": "Set up by an admin", "OrganizationID": "org-1",
			"Policy": map[string]any{"PreventDeleteStorageVault": false, "SomeAdminChoice": 42,
				"StorageVaultProviders": map[string]any{"ShouldRestrictProviderList": false, "Extra": "x"}}})
		e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, settings, nil)))
		pol, _ := e.srv.Policy(id)
		inner := pol["Policy"].(map[string]any)
		if pol["Description"] != "Set up by an admin" || pol["OrganizationID"] != "org-1" || fmt.Sprint(inner["SomeAdminChoice"]) != "42" ||
			inner["PreventDeleteStorageVault"] != true || inner["StorageVaultProviders"].(map[string]any)["Extra"] != "x" ||
			inner["StorageVaultProviders"].(map[string]any)["ShouldRestrictProviderList"] != true {
			t.Fatalf("policy after update %#v", pol)
		}
		for _, r := range e.srv.Requests() {
			if r.Op == "policies/set" && r.Form.Get("CheckPolicyHash") == "" {
				t.Fatal("an update of an existing policy did not send CheckPolicyHash")
			}
		}
	})
	t.Run("matching policy left alone", func(t *testing.T) {
		e := newEnv(t)
		var pol map[string]any
		_ = json.Unmarshal([]byte(wantPolicy), &pol)
		e.srv.SetPolicy(id, pol)
		e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, settings, nil)))
		if n := e.srv.Count("policies/set"); n != 0 {
			t.Fatalf("policies/set called %d times for a matching policy", n)
		}
	})
	t.Run("policy id without creation", func(t *testing.T) {
		e := newEnv(t)
		name := e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, map[string]string{comet.SettingPolicyGroupID: "admins-policy"}, nil))).Reference
		if e.srv.Count("policies/get")+e.srv.Count("policies/set") != 0 {
			t.Fatal("policies touched although create_policy_group is not set")
		}
		if got := e.user(t, name).Profile["PolicyID"]; got != "admins-policy" {
			t.Fatalf("PolicyID %v", got)
		}
	})
}

func TestShortCredentials(t *testing.T) {
	t.Run("username", func(t *testing.T) {
		e := newEnv(t)
		o := op(events.Suspend, 1, nil, nil)
		o.Username = "abc" // WHMCS's service username
		_, perr := e.p.Prepare(testCtx(t), o)
		_, aerr := e.p.Apply(testCtx(t), o)
		for _, err := range []error{perr, aerr} {
			if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "shorter than 6 characters") {
				t.Fatalf("err %v, want a permanent 'shorter than 6 characters' error", err)
			}
		}
		if len(e.srv.Ops()) != 0 {
			t.Fatalf("calls made: %v", e.srv.Ops())
		}
	})
	for _, a := range []events.Action{events.SignupCustomer, events.ChangePassword} {
		t.Run("password "+string(a), func(t *testing.T) {
			srv := comettest.NewServer()
			t.Cleanup(srv.Close)
			const short = "pw12345"
			if err := srv.AddUser("existing-user", "long-enough-1"); err != nil {
				t.Fatal(err)
			}
			p, err := comet.New(comet.Config{Settings: srvSettings(srv), Username: srv.Username, Password: srv.Password}, fixedPasswords(short), nil)
			if err != nil {
				t.Fatal(err)
			}
			o := op(a, 1, nil, nil)
			if a == events.ChangePassword {
				o.Username = "existing-user"
			}
			_, err = p.Apply(testCtx(t), o)
			if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "shorter than 8 characters") {
				t.Fatalf("err %v, want a permanent 'shorter than 8 characters' error", err)
			}
			if strings.Contains(err.Error(), short) {
				t.Fatalf("the error holds the password: %v", err)
			}
			if srv.Count("add-user")+srv.Count("reset-user-password") != 0 || srv.Created() != 1 {
				t.Fatalf("a short password was sent: %v", srv.Ops())
			}
		})
	}
}

func TestValidateSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		action   events.Action
		settings map[string]string
		wantErr  string
	}{
		{"empty", events.SignupCustomer, nil, ""},
		{"full", events.SignupCustomer, configured, ""},
		{"case-insensitive yes", events.ChangePackage, map[string]string{"require_password_change": " YES ", "create_policy_group": "No"}, ""},
		{"empty flag", events.Suspend, map[string]string{"require_password_change": ""}, ""},
		{"bad flag", events.SignupCustomer, map[string]string{"require_password_change": "maybe"}, `setting "require_password_change": want yes or no, got "maybe"`},
		{"bad create flag", events.SignupCustomer, map[string]string{"create_policy_group": "1"}, `setting "create_policy_group": want yes or no, got "1"`},
		{"create without id", events.SignupCustomer, map[string]string{"create_policy_group": "yes"}, `setting "create_policy_group": yes needs setting "policy_group_id"`},
		{"id with space", events.SignupCustomer, map[string]string{"policy_group_id": "a b"}, `setting "policy_group_id": "a b" is not a Comet id`},
		{"template with newline", events.SignupCustomer, map[string]string{"storage_vault_template": "x\ny"}, `setting "storage_vault_template"`},
		{"unknown key", events.SignupCustomer, map[string]string{"storage_quota": "5"}, `setting "storage_quota": unknown to the comet provider`},
		{"reseller", events.SignupReseller, nil, `action "signup_reseller": not supported`},
		{"made-up action", events.Action("reboot"), nil, `action "reboot": not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := comet.ValidateSettings(tc.action, tc.settings)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
