package worker_test

import (
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

// exampleJetStream starts an embedded JetStream server (in-process only,
// its store in a fresh temporary directory) and connects to it, for the
// Examples, which have no *testing.T: stop closes the connection, shuts
// the server down and removes the directory. It panics if the server does
// not start.
func exampleJetStream() (nc *nats.Conn, js jetstream.JetStream, stop func()) {
	dir, err := os.MkdirTemp("", "hookworker-example")
	if err != nil {
		panic(err)
	}
	ns, err := worker.StartEmbedded(dir, "") // in-process only
	if err != nil {
		panic(err)
	}
	if nc, err = nats.Connect("", nats.InProcessServer(ns)); err != nil {
		panic(err)
	}
	if js, err = jetstream.New(nc); err != nil {
		panic(err)
	}
	return nc, js, func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
}

// exampleSandboxWorker is a worker over js whose one product (id 1) is
// provisioned at the sandbox provider, with the default options.
func exampleSandboxWorker(js jetstream.JetStream) *worker.Worker {
	cat, err := catalog.Parse([]byte("products:\n  - id: 1\n    provider: sandbox\n"), "example", map[string]catalog.Validator{"sandbox": nil})
	if err != nil {
		panic(err)
	}
	w, err := worker.New(js, cat, map[string]worker.Provider{"sandbox": sandbox.New()}, worker.DefaultOptions(), nil, nil)
	if err != nil {
		panic(err)
	}
	return w
}
