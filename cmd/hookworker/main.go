// Command hookworker consumes WHMCS events from NATS JetStream and
// provisions backup services at Comet, CodeGuard (LogicBoxes) and
// StoreGrid-style servers, once each, with retries, result events and a
// dead-letter stream.
//
//	hookworker run                      run the worker (embedded JetStream when HOOKWORKER_NATS_URL is empty)
//	hookworker emit <type> [--file F]   publish an event (a built-in sample without --file)
//	hookworker results [--all]          follow result events
//	hookworker dlq list|show|replay|discard
//	hookworker status                   the running worker's streams, consumer lag, dead letters, provider health
//	hookworker providers check          the running worker tests its providers (--local: with this command's settings)
//	hookworker help                     every setting, its default and meaning
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); empty
// means the module's build info (buildVersion).
var version = ""

// buildVersion is the version this binary reports: the link-time one, else
// the module version Go stamped (v1.2.3 for `go install …@v1.2.3`), plus
// the VCS revision and whether the tree was modified (a plain `go build`
// in a git checkout).
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified, at string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			at = s.Value
		}
	}
	if rev != "" && (v == "(devel)" || strings.HasPrefix(v, "v0.0.0-")) {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v = "(devel) " + rev
		if modified == "true" {
			v += "+modified"
		}
		if at != "" {
			v += " " + at
		}
	}
	return v + " " + info.GoVersion
}

const usage = `hookworker: provisioning worker for WHMCS events on NATS JetStream

Usage:
  hookworker run                         run the worker (embedded JetStream + sandbox provider by default)
  hookworker emit <type> [--file F] [--source NAME] [--product N] [--service N] [--order N] [--client N] [--invoice N]
                                         publish an event (a built-in sample without --file)
  hookworker results [--all] [--count N] follow result events (--all: from the start)
  hookworker dlq list [--type T] [--source S] [--class C]
  hookworker dlq show <seq>
  hookworker dlq replay <seq>... | --all [filters]
  hookworker dlq discard <seq>... | --all [filters]
  hookworker status                      the running worker's streams, consumer lag, dead letters, provider health
  hookworker providers check             the running worker tests its providers now (--provider P, --local)
  hookworker record show <key>...        an operation's idempotency record (the key as in result events)
  hookworker catalog check [FILE]        load and validate a catalog (default HOOKWORKER_CATALOG) without connecting
  hookworker help                        every setting (environment variable), its default and meaning
  hookworker version

Event types: client.added order.accepted invoice.paid service.renewal_paid service.suspended
  service.unsuspended service.terminated service.password_changed service.package_changed
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status: 0 success, 1
// failure, 2 bad usage or configuration.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		return printHelp(stdout)
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "hookworker", buildVersion())
		return 0
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(stderr, "hookworker: configuration:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		err = cmdRun(ctx, cfg, stderr)
	case "emit":
		err = cmdEmit(ctx, cfg, args[1:], stdout)
	case "results":
		err = cmdResults(ctx, cfg, args[1:], stdout)
	case "dlq":
		err = cmdDLQ(ctx, cfg, args[1:], stdout)
	case "status":
		err = cmdStatus(ctx, cfg, stdout)
	case "record":
		err = cmdRecord(ctx, cfg, args[1:], stdout)
	case "catalog":
		if len(args) < 2 || args[1] != "check" {
			err = usageError{errors.New("want: hookworker catalog check [FILE]")}
			break
		}
		err = cmdCatalogCheck(cfg, args[2:], stdout)
	case "providers":
		if len(args) < 2 || args[1] != "check" {
			err = usageError{errors.New("want: hookworker providers check")}
			break
		}
		err = cmdProvidersCheck(ctx, cfg, args[2:], stdout)
	default:
		err = usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	var ue usageError
	var ce configError
	var he helpRequested
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		he.print(stdout)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "hookworker:", err)
		fmt.Fprintln(stderr, "usage: hookworker help (or hookworker <command> --help)")
		return 2
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, "hookworker: configuration:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "hookworker:", err)
		return 1
	}
}

// helpRequested is -h or --help after a command: its flags are printed
// and the exit status is 0.
type helpRequested struct{ fs *flag.FlagSet }

func (h helpRequested) Error() string { return "help requested" }

func (h helpRequested) print(w io.Writer) {
	fmt.Fprintf(w, "usage: hookworker %s [flags]\n\nFlags:\n", h.fs.Name())
	h.fs.SetOutput(w)
	h.fs.PrintDefaults()
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
