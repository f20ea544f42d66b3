// Command metrics-server scrapes every kubelet and serves the latest CPU and
// memory usage of nodes and pods as the metrics.k8s.io API.
package main

import (
	"os"
	"runtime/debug"

	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app"
)

func main() {
	// The heap is mostly long-lived state (kubelet connections, pods,
	// points) and a scrape leaves little garbage; letting the heap grow to
	// twice its live size before a collection, Go's default, is most of a
	// large cluster's resident memory. At 5,000 nodes GOGC=25 measured
	// 453 against 523 MiB for GOGC=50 at the same CPU (BENCHMARKS.md).
	// GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	ctx := genericapiserver.SetupSignalContext()
	cmd := app.NewCommand(ctx, os.Stdout)
	os.Exit(app.Run(cmd))
}
