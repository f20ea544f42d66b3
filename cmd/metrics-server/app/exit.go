package app

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	"k8s.io/klog/v2"
)

// ExitError ends the process with Code. Err, when set, is printed first;
// a nil Err means the command already said why (the doctor's table).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Run executes cmd as component-base's cli.Run does (logging set up after
// the flags are parsed, a flag error printed plainly, a later error logged)
// and returns the process's exit status: 0, the Code of an ExitError (the
// doctor's 1 for a failed check and 2 for a usage error), else 1.
func Run(cmd *cobra.Command) int {
	// cli.RunNoErrOutput runs this hook right after it initialises logging.
	logsInitialized := false
	pre := cmd.PersistentPreRun
	cmd.PersistentPreRun = func(c *cobra.Command, args []string) {
		logsInitialized = true
		if pre != nil {
			pre(c, args)
		}
	}
	err := cli.RunNoErrOutput(cmd)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "Error: %v\n", exit.Err)
		}
		return exit.Code
	}
	if !logsInitialized {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
	} else {
		klog.ErrorS(err, "command failed")
	}
	return 1
}
