// Command replaced is a test input for the sbom tests: it links
// k8s.io/apimachinery, which the test module's go.mod replaces, so its
// build info holds a replacement.
package main

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"
)

func main() {
	fmt.Println(version.MustParseGeneric("v1.37.2"))
}
