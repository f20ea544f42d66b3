//go:build realnode

// Command missing exits 0 when this machine can run a real node, and
// otherwise prints what it lacks (and how to get it) and exits 1.
package main

import (
	"fmt"
	"os"

	"github.com/kubemetrics/metrics-server/test/realnode"
)

func main() {
	if why := realnode.Missing(); why != "" {
		fmt.Fprintln(os.Stderr, "this machine cannot run a real node:", why)
		os.Exit(1)
	}
}
