// Command gencerts writes the PKI of a local cluster with the aggregation
// layer into a folder (default certs/generated, git-ignored). See
// certs/README.md for what each file is for.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

func main() {
	dir := flag.String("dir", "certs/generated", "folder to write the certificates and keys into")
	flag.Parse()
	files, err := pki.GenerateCluster(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
	fmt.Println("wrote the local cluster PKI to", files.Dir)
}
