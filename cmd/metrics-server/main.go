// Command metrics-server scrapes every kubelet and serves the latest CPU and
// memory usage of nodes and pods as the metrics.k8s.io API.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	cmd := app.NewCommand(ctx, os.Stdout)
	os.Exit(cli.Run(cmd))
}
