// Package options holds the command-line flags of the metrics server, their
// defaults and validation, and turns them into a server.Config.
//
// Every flag upstream metrics-server v0.9 accepts is accepted here with the
// same name, default and meaning (testdata/upstream-v0.9.0-flags.txt is the
// list the tests hold us to); our own flags are added in the same groups.
package options
