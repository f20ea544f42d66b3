package app

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// loadKubeconfig loads the operator's kubeconfig as kubectl does: path
// when not empty, else $KUBECONFIG, else ~/.kube/config, at context when
// not empty, else its current context. The config's user agent is
// userAgent; timeouts and rate limits are the caller's to set. The error
// names the flags to pass.
func loadKubeconfig(path, context, userAgent string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) || errors.Is(err, clientcmd.ErrEmptyConfig) {
			return nil, fmt.Errorf("no kubeconfig found: pass --kubeconfig or set KUBECONFIG: %w", err)
		}
		return nil, fmt.Errorf("loading the kubeconfig (--kubeconfig %q, --context %q): %w", path, context, err)
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}

// setToolHelp makes cmd, an operator's subcommand (doctor, status), print
// its own help and usage rather than the server's flag sections, which the
// root command sets and a subcommand would inherit, and turns a flag error
// into an *ExitError with usageCode that points at `metrics-server <name>
// --help`.
func setToolHelp(cmd *cobra.Command, usageCode int) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: usageCode, Err: fmt.Errorf("%w; see metrics-server %s --help", err, c.Name())}
	})
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		_, _ = fmt.Fprintf(c.OutOrStdout(), "%s\n\nUsage:\n  %s\n\nFlags:\n%s", c.Long, c.UseLine(), c.Flags().FlagUsages())
	})
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		_, err := fmt.Fprintf(c.OutOrStderr(), "Usage:\n  %s\n\nFlags:\n%s", c.UseLine(), c.Flags().FlagUsages())
		return err
	})
}
