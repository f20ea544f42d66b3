package chart

import (
	"strings"
	"testing"
)

// TestShutdownDelayWithReplicas: with more than one replica the chart gives
// the server the shutdown delay the high-availability component gives it
// (a terminating replica keeps serving while its endpoint's removal
// propagates), once, unless args already set one; one replica gets none.
func TestShutdownDelayWithReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string // the flag's value; "" means not set
	}{
		{"one replica", nil, ""},
		{"two replicas", []string{"replicas=2"}, "5s"},
		{"two replicas, own delay", []string{"replicas=2", "args[0]=--shutdown-delay-duration=12s"}, "12s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(t, mustRender(t, tc.values...))
			n := 0
			for _, a := range d.Spec.Template.Spec.Containers[0].Args {
				if strings.HasPrefix(a, "--shutdown-delay-duration") {
					n++
				}
			}
			got := flagValues(t, d)["shutdown-delay-duration"]
			if tc.want == "" {
				if n != 0 {
					t.Errorf("%d --shutdown-delay-duration flags, want none", n)
				}
				return
			}
			if n != 1 || got != tc.want {
				t.Errorf("%d --shutdown-delay-duration flags, value %q; want one, %q", n, got, tc.want)
			}
		})
	}
}
