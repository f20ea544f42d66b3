// Command kubectl is kubectl 1.32, built from its published module, for the
// end-to-end test that a kubectl which knows only metrics.k8s.io/v1beta1
// still works while v1 is served.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
