//go:build realnode

// Command sweep removes what a killed real-node run left on this machine
// (processes, containers, mounts, network namespaces, cgroups, iptables
// chains, the bridge): `make real-node-down`. It takes the real-node lock
// first, so it never touches a run that is still going.
package main

import (
	"fmt"
	"os"

	"github.com/kubemetrics/metrics-server/test/realnode"
)

func main() {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "sweep: must run as root")
		os.Exit(1)
	}
	unlock, err := realnode.Lock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(1)
	}
	defer unlock()
	realnode.Sweep(func(format string, a ...any) { fmt.Printf(format+"\n", a...) })
	fmt.Println("sweep: done")
}
