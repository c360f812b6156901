package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dynamicUID is a uid of systemd's DynamicUser= range (61184–65519) that
// owns nothing, as the unit's transient user.
const dynamicUID = 61999

// unitModes reads, from deploy/systemd/hookworker.service, the modes the
// unit and its install steps give the configuration directory, the env
// file and the catalog.
func unitModes(t *testing.T) (dir, env, cat os.FileMode) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/systemd/hookworker.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	if !regexp.MustCompile(`(?m)^DynamicUser=yes$`).MatchString(unit) || !regexp.MustCompile(`(?m)^ConfigurationDirectory=hookworker$`).MatchString(unit) {
		t.Fatal("the unit no longer has DynamicUser=yes and ConfigurationDirectory=hookworker: update this test")
	}
	mode := func(re string) os.FileMode {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(unit)
		if m == nil {
			t.Fatalf("the unit has no line matching %s", re)
		}
		v, err := strconv.ParseUint(m[1], 8, 32)
		if err != nil {
			t.Fatal(err)
		}
		return os.FileMode(v)
	}
	dir = mode(`(?m)^ConfigurationDirectoryMode=(0[0-7]{3})$`)
	if d := mode(`(?m)^#\s+install -d -m (0[0-7]{3}) /etc/hookworker$`); d != dir {
		t.Fatalf("the install steps make /etc/hookworker %o, ConfigurationDirectoryMode= %o", d, dir)
	}
	env = mode(`(?m)^#\s+install -m (0[0-7]{3}) \S+ /etc/hookworker/hookworker.env`)
	cat = mode(`(?m)^#\s+install -m (0[0-7]{3}) \S+ /etc/hookworker/catalog.yaml`)
	return dir, env, cat
}

// The unit's transient user reads its catalog: /etc/hookworker and the
// catalog are created root-owned with the unit's modes (systemd does not
// chown ConfigurationDirectory=), then `hookworker catalog check` runs as
// an unprivileged uid that owns nothing. The secret env file stays
// unreadable to it. With the old 0750 directory the same check fails, so
// this test can tell.
func TestSystemdUnitUserReadsItsConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create root-owned files and run as another uid")
	}
	dirMode, envMode, catMode := unitModes(t)
	for _, tc := range []struct {
		name     string
		dir      os.FileMode
		wantCode int
		want     string
	}{
		{"the unit's modes", dirMode, 0, "4 products"},
		{"the old ConfigurationDirectoryMode=0750", 0o750, 2, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p := root; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
				if err := os.Chmod(p, 0o755); err != nil { // as / and /usr are
					t.Fatal(err)
				}
			}
			bin := filepath.Join(root, "usr/local/bin/hookworker")
			etc := filepath.Join(root, "etc/hookworker")
			for _, d := range []string{filepath.Dir(bin), etc} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			exe, err := os.ReadFile(binary(t))
			if err != nil {
				t.Fatal(err)
			}
			catalog, err := builtinCatalogs.ReadFile("catalogs/sandbox.yaml")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				path string
				b    []byte
				mode os.FileMode
			}{{bin, exe, 0o755}, {filepath.Join(etc, "catalog.yaml"), catalog, catMode},
				{filepath.Join(etc, "hookworker.env"), []byte("HOOKWORKER_NATS_TOKEN=s3cr3t-t0ken\n"), envMode}} {
				if err := os.WriteFile(f.path, f.b, f.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(f.path, f.mode); err != nil { // not narrowed by the umask
					t.Fatal(err)
				}
			}
			if err := os.Chmod(etc, tc.dir); err != nil {
				t.Fatal(err)
			}
			asUser := func(args ...string) (int, string) {
				t.Helper()
				cmd := exec.Command(bin, args...)
				cmd.Env = []string{"PATH=/usr/bin:/bin", "HOOKWORKER_DATA_DIR=" + filepath.Join(root, "var/lib/hookworker")}
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: dynamicUID, Gid: dynamicUID}}
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				if ee, ok := err.(*exec.ExitError); ok {
					return ee.ExitCode(), out.String()
				}
				if err != nil {
					t.Fatal(err)
				}
				return 0, out.String()
			}
			code, out := asUser("catalog", "check", filepath.Join(etc, "catalog.yaml"))
			if code != tc.wantCode || !strings.Contains(out, tc.want) {
				t.Fatalf("catalog check as uid %d (dir %o, catalog %o): exit %d, want %d with %q:\n%s", dynamicUID, tc.dir, catMode, code, tc.wantCode, tc.want, out)
			}
			if code, out := asUser("catalog", "check", filepath.Join(etc, "hookworker.env")); code == 0 || strings.Contains(out, "s3cr3t") {
				t.Fatalf("the service user read the root-only env file: exit %d:\n%s", code, out)
			}
		})
	}
}
