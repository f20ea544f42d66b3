package doctor

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kubemetrics/metrics-server/pkg/kubeletflags"
)

// ServerFlags are metrics-server's flags as its args (from its Deployment,
// or --server-args) set them, read with pflag as the server reads them.
// The kubelet client's flags are read with the server's own definitions
// (package kubeletflags); of the others, those the checks read are
// defined here with the server's names and types. Other flags and words
// are ignored.
type ServerFlags struct {
	// Kubelet are the kubelet client's flags; defaults where the args set
	// none.
	Kubelet *kubeletflags.Options
	// set maps each flag the args set to its value; a list's values are
	// joined by commas, a flag given twice keeps what pflag keeps (the
	// last value, or a list's values appended).
	set map[string]string
}

// ParseServerArgs reads args with pflag. On an error (args the server
// would refuse to start with) the flags are the defaults.
func ParseServerArgs(args []string) (ServerFlags, error) {
	f := ServerFlags{Kubelet: kubeletflags.New(), set: map[string]string{}}
	fs := pflag.NewFlagSet("metrics-server", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.SetOutput(discard{})
	f.Kubelet.AddFlags(fs)
	// As k8s.io/apiserver's authentication and serving options, and the
	// server's TLS bootstrap, define them.
	fs.String("requestheader-client-ca-file", "", "")
	fs.StringSlice("requestheader-allowed-names", nil, "")
	fs.Bool("authentication-skip-lookup", false, "")
	fs.String("tls-cert-file", "", "")
	fs.String("tls-bootstrap-secret", "", "")
	fs.String("tls-bootstrap-service", "", "")
	fs.StringSlice("tls-bootstrap-apiservices", nil, "")
	if err := fs.Parse(args); err != nil {
		return ServerFlags{Kubelet: kubeletflags.New(), set: map[string]string{}}, fmt.Errorf("the server's args %q do not parse: %w", args, err)
	}
	fs.Visit(func(fl *pflag.Flag) {
		if list, ok := fl.Value.(pflag.SliceValue); ok {
			f.set[fl.Name] = strings.Join(list.GetSlice(), ",")
			return
		}
		f.set[fl.Name] = fl.Value.String()
	})
	return f, nil
}

// Value returns the value the args give the flag name (without dashes),
// and whether they set it.
func (f ServerFlags) Value(name string) (string, bool) {
	v, ok := f.set[name]
	return v, ok
}

// flagValues maps the flags args set to their values (see ServerFlags);
// args that do not parse set none.
func flagValues(args []string) map[string]string {
	f, _ := ParseServerArgs(args)
	return f.set
}

// discard swallows pflag's usage output.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
