package nodecheck

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// TestEndpointCause: the cause a failing endpoint is folded by holds for
// every node with that failure: no node name, address or body in it, and
// an undecodable 200 is not called an HTTP status.
func TestEndpointCause(t *testing.T) {
	used := map[bool]bool{true: true, false: true}
	for _, tt := range []struct {
		name string
		a    *answer
		want string
	}{
		{name: "5xx", a: &answer{resource: true, path: "/metrics/resource", status: 503, body: "kubelet is shutting down"}, want: "/metrics/resource fails with http status 503"},
		{name: "undecodable 200", a: &answer{resource: true, path: "/metrics/resource", status: 200, decodeErr: errors.New("line 1: not a metric")}, want: "/metrics/resource fails: the answer does not decode"},
		{name: "too large", a: &answer{status: 200, path: "/stats/summary?only_cpu_and_memory=true", tooLarge: true, decodeErr: errors.New("body larger than 16777216 bytes")}, want: "/stats/summary fails: the answer is too large"},
		{name: "timeout", a: &answer{resource: true, path: "/metrics/resource", err: fmt.Errorf("Get \"https://10.0.3.17:10250/metrics/resource\": %w", context.DeadlineExceeded)}, want: "/metrics/resource fails: no answer in time"},
		{name: "reset", a: &answer{resource: true, path: "/metrics/resource", err: errors.New("read tcp 10.9.0.4:51234->10.0.3.17:10250: connection reset by peer")}, want: "/metrics/resource fails: no answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &probe{r: &runner{cfg: kubelet.Config{MaxResponseBytes: 16 << 20}}, node: nodeAt(t, "worker-3", "10.0.3.17:10250"), addr: "10.0.3.17:10250", target: "node/worker-3"}
			other := &answer{resource: !tt.a.resource}
			p.endpoint(tt.a, tt.a.resource, used, false, tt.a, other)
			if len(p.out) != 1 || p.out[0].cause != tt.want {
				t.Errorf("results %+v, want one with cause %q", p.out, tt.want)
			}
		})
	}
}
