// Command metrics-server scrapes every kubelet and serves the latest CPU and
// memory usage of nodes and pods as the metrics.k8s.io API.
package main

import (
	"os"
	"runtime/debug"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app"
)

func main() {
	// The heap is mostly long-lived caches (pods, nodes, points); letting
	// it grow to twice its live size before a collection, Go's default,
	// is most of the resident memory of a large cluster's server. Half
	// that headroom costs a few percent more CPU. GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx := genericapiserver.SetupSignalContext()
	cmd := app.NewCommand(ctx, os.Stdout)
	os.Exit(cli.Run(cmd))
}
