package comet_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/comet"
)

// signupOf is a signup of serviceID for the client with e-mail email, as
// the worker routes it; whmcsUsername is the username WHMCS holds (WHMCS
// fills it with the first letters of the domain by default).
func signupOf(serviceID int, email, whmcsUsername string) events.Operation {
	o := op(events.SignupCustomer, serviceID, nil, map[string]string{"number_of_devices": "2"})
	o.Client = &events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: email}
	o.Username = whmcsUsername
	return o
}

// Issue 8 point 3: a signup never takes over another customer's account.
func TestNeverAdoptsAnotherCustomersAccount(t *testing.T) {
	t.Run("WHMCS default username taken by another customer", func(t *testing.T) {
		e := newEnv(t)
		// Another customer's account, under the name WHMCS derives from a
		// similar domain ("backupco" for backupcompany1.com and 2.com).
		if err := e.srv.AddUser("backupco", "their-password-1"); err != nil {
			t.Fatal(err)
		}
		theirs := e.user(t, "backupco")
		o := e.prepared(t, signupOf(1, "ada@example.com", "backupco"))
		out := e.apply(t, o)
		if out.Reference == "backupco" || out.AlreadyDone {
			t.Fatalf("signup adopted another customer's account: %+v", out)
		}
		if out.Reference != "ada@example.com" {
			t.Errorf("reference %q, want the client's e-mail address (the official module's choice)", out.Reference)
		}
		if after := e.user(t, "backupco"); !reflect.DeepEqual(after.Profile, theirs.Profile) || !e.srv.CheckPassword("backupco", "their-password-1") {
			t.Error("the other customer's account was changed")
		}
		if an, _ := e.user(t, out.Reference).Profile["AccountName"].(string); !strings.Contains(an, comet.ServiceMarker(o)) {
			t.Errorf("AccountName %q carries no service marker", an)
		}
	})
	t.Run("e-mail name taken: suffix, as the official module", func(t *testing.T) {
		e := newEnv(t)
		if err := e.srv.AddUser("ada@example.com", "their-password-1"); err != nil {
			t.Fatal(err)
		}
		o := e.prepared(t, signupOf(1, "ada@example.com", ""))
		name := o.Plan[comet.PlanUsername]
		if !strings.HasPrefix(name, "ada@example.com_") || len(name) != len("ada@example.com_1234") {
			t.Fatalf("planned %q, want ada@example.com_NNNN", name)
		}
		if again := e.prepared(t, signupOf(1, "ada@example.com", "")).Plan[comet.PlanUsername]; again != name {
			t.Errorf("a second Prepare chose %q, want the same %q (deterministic)", again, name)
		}
		if out := e.apply(t, o); out.Reference != name {
			t.Fatalf("reference %q, want %q (written back as the service username)", out.Reference, name)
		}
		if e.srv.CheckPassword("ada@example.com", e.servicePassword(t, o)) || !e.srv.CheckPassword("ada@example.com", "their-password-1") {
			t.Error("the existing account's password was changed")
		}
	})
	t.Run("two services of one client", func(t *testing.T) {
		e := newEnv(t)
		first := e.prepared(t, signupOf(1, "ada@example.com", ""))
		a := e.apply(t, first)
		b := e.apply(t, e.prepared(t, signupOf(2, "ada@example.com", "")))
		if a.Reference == b.Reference || e.srv.Created() != 2 {
			t.Fatalf("two services share %q (created %d)", a.Reference, e.srv.Created())
		}
		// A redelivered signup of the first service adopts its own account.
		again := e.apply(t, e.prepared(t, signupOf(1, "ada@example.com", "")))
		if again.Reference != a.Reference || !again.AlreadyDone || e.srv.Created() != 2 {
			t.Fatalf("redelivered signup: %+v, created %d", again, e.srv.Created())
		}
	})
	t.Run("planned at the same time", func(t *testing.T) {
		e := newEnv(t)
		var wg sync.WaitGroup
		names := make([]string, 4)
		for i := range names {
			wg.Go(func() {
				plan, err := e.p.Prepare(testCtx(t), signupOf(10+i, "ada@example.com", ""))
				if err != nil {
					t.Error(err)
					return
				}
				names[i] = plan[comet.PlanUsername]
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("two signups planned at once chose the same name: %v", names)
			}
			seen[n] = true
		}
	})
	t.Run("another service's account appears under the planned name", func(t *testing.T) {
		e := newEnv(t)
		o := e.prepared(t, signupOf(1, "ada@example.com", ""))
		other := e.prepared(t, signupOf(2, "grace@example.com", ""))
		// Someone else's signup created and marked it in the meantime.
		if err := e.srv.AddUser(o.Plan[comet.PlanUsername], "their-password-1"); err != nil {
			t.Fatal(err)
		}
		e.srv.Mutate(o.Plan[comet.PlanUsername], func(p map[string]any) { p["AccountName"] = "[" + comet.ServiceMarker(other) + "]" })
		_, err := e.p.Apply(testCtx(t), o)
		if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "another WHMCS service") {
			t.Fatalf("err %v, want a permanent error: the account belongs to another service", err)
		}
		if e.srv.Count("set-user-profile-hash") != 0 {
			t.Error("the other service's account was written")
		}
	})
	t.Run("custom field Username", func(t *testing.T) {
		e := newEnv(t)
		o := signupOf(1, "ada@example.com", "")
		o.CustomUsername = "ada-backup"
		if out := e.apply(t, e.prepared(t, o)); out.Reference != "ada-backup" {
			t.Errorf("reference %q, want the custom field's name", out.Reference)
		}
		short := signupOf(2, "ada@example.com", "")
		short.CustomUsername = "ada"
		name := e.prepared(t, short).Plan[comet.PlanUsername]
		if len(name) != 6 || !strings.HasPrefix(name, "ada") || strings.Trim(name[3:], "0123456789") != "" {
			t.Errorf("short custom name planned as %q, want it padded with digits to 6 characters", name)
		}
	})
}

// A lifecycle action never acts on an account another service owns, and
// finds its own by the marker when WHMCS has no username for the service.
func TestLifecycleRespectsTheMarker(t *testing.T) {
	e := newEnv(t)
	mine := e.prepared(t, signupOf(1, "ada@example.com", ""))
	e.apply(t, mine)
	e.apply(t, e.prepared(t, signupOf(2, "grace@example.com", "")))

	suspend := op(events.Suspend, 1, nil, nil) // no username in the event
	if out := e.apply(t, e.prepared(t, suspend)); out.Reference != "ada@example.com" || !e.user(t, "ada@example.com").Suspended() {
		t.Fatalf("suspend without a username: %+v", out)
	}
	wrong := op(events.Terminate, 1, nil, nil)
	wrong.Username = "grace@example.com" // a stale or wrong WHMCS username
	_, err := e.p.Apply(testCtx(t), e.prepared(t, wrong))
	if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "another WHMCS service") {
		t.Fatalf("terminate of another service's account: err %v, want a permanent refusal", err)
	}
	if _, ok := e.srv.User("grace@example.com"); !ok {
		t.Fatal("another service's account was deleted")
	}
}

// A paid Storage Vault quota on a user without a Storage Vault cannot be
// applied: a permanent error naming the option, never a silent success.
func TestVaultQuotaWithoutVaultIsAnError(t *testing.T) {
	e := newEnv(t)
	o := e.prepared(t, op(events.SignupCustomer, 1, nil, map[string]string{"storage_vault_quota_gb": "100"}))
	_, err := e.p.Apply(testCtx(t), o)
	if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), `"storage_vault_quota_gb"`) {
		t.Fatalf("err %v, want a permanent error naming storage_vault_quota_gb", err)
	}
}
