// Package app builds the metrics-server command: flags, validation, and the
// run that ends when its context does.
package app

import (
	"context"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/term"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
	"github.com/kubemetrics/metrics-server/pkg/memlimit"
)

// NewCommand returns the metrics-server command. It runs until ctx is done;
// --version is printed to out.
func NewCommand(ctx context.Context, out io.Writer) *cobra.Command {
	opts := options.NewOptions()
	cmd := &cobra.Command{
		Use:   "metrics-server",
		Short: "Serve node and pod CPU and memory usage as the metrics.k8s.io API",
		Long: "metrics-server scrapes every kubelet (/stats/summary or /metrics/resource), keeps the latest\n" +
			"points in memory and serves them as metrics.k8s.io v1 and v1beta1 for kubectl top and the\n" +
			"HorizontalPodAutoscaler, as an API server aggregated behind the kube-apiserver.",
		SilenceUsage: true,
		Args:         cobra.ArbitraryArgs, // refused below with the server's own message, not cobra's "unknown command"
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ShowVersion {
				_, err := fmt.Fprintln(out, version.Get().GitVersion)
				return err
			}
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q: metrics-server takes only flags", args)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmd.SetContext(ctx)
	cmd.AddCommand(newDoctorCommand(out))
	cmd.AddCommand(newStatusCommand(out))

	fs := cmd.Flags()
	nfs := opts.Flags()
	// klog's -v and -vmodule, as upstream offers them.
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	logs.AddGoFlags(klogFlags)
	nfs.FlagSet("logging").AddGoFlagSet(klogFlags)
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}

	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cmd.SetUsageFunc(func(cmd *cobra.Command) error {
		_, _ = fmt.Fprintf(cmd.OutOrStderr(), "Usage:\n  %s\n", cmd.UseLine())
		cliflag.PrintSections(cmd.OutOrStderr(), nfs, cols)
		return nil
	})
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		_, _ = fmt.Fprintf(cmd.OutOrStdout(), "%s\n\nUsage:\n  %s\n", cmd.Long, cmd.UseLine())
		if cmd.HasAvailableSubCommands() {
			_, _ = fmt.Fprintf(cmd.OutOrStdout(), "\nCommands:\n")
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					_, _ = fmt.Fprintf(cmd.OutOrStdout(), "  %-*s  %s\n", cmd.NamePadding(), c.Name(), c.Short)
				}
			}
		}
		cliflag.PrintSections(cmd.OutOrStdout(), nfs, cols)
	})
	return cmd
}

func run(ctx context.Context, opts *options.Options) error {
	if errs := opts.Validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("invalid flags:\n  %s", strings.Join(msgs, "\n  "))
	}
	if err := opts.ApplyLogging(); err != nil {
		return fmt.Errorf("applying the logging flags: %w", err)
	}
	// After the logging flags, so the line says what was set in their format.
	memlimit.Apply(memlimit.Options{FS: os.DirFS("/"), Getenv: os.Getenv, SetMemoryLimit: debug.SetMemoryLimit})
	cfg, err := opts.ServerConfig(ctx)
	if err != nil {
		return err
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		return err
	}
	klog.InfoS("Starting metrics-server", "version", version.Get().GitVersion, "resolution", opts.MetricResolution)
	return srv.Run(ctx)
}
