package main

import (
	"os"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// The README's first screen stays two set-up commands: the worker (embedded
// JetStream + the memory sandbox, allowed with no setting at all) and the
// tests.
func TestReadmeFirstScreenIsTwoCommands(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "```sh\n")
	if start < 0 || strings.Count(readme[:start], "\n") > 20 {
		t.Fatalf("no sh block among the README's first 20 lines")
	}
	block := readme[start+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	var cmds []string
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmd, _, _ := strings.Cut(l, " #")
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	if len(cmds) != 2 || cmds[0] != "go run ./cmd/hookworker run" || cmds[1] != "go test -race ./..." {
		t.Fatalf("first screen commands %q, want go run ./cmd/hookworker run and go test -race ./...", cmds)
	}
	// With nothing set, `run` may use the sandbox: no catalog is demanded.
	var c Config
	if err := envconfig.Process("HOOKWORKER_README_TEST_UNSET", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.requireCatalog(); err != nil || c.sandboxMode() != "memory" || c.NATSURL != "" {
		t.Fatalf("defaults: requireCatalog %v, sandbox %q, NATS URL %q", err, c.sandboxMode(), c.NATSURL)
	}
}
