package localcluster

import (
	"context"
	"errors"
)

// StartMetricsServerBroken starts our server as StartMetricsServer does but
// returns as soon as its process runs, without waiting for the APIServices
// to become Available: for a server broken on purpose (flags the
// kube-apiserver's requests fail against). The server must have been
// started once before, so the APIServices already name its port and CA,
// which stay; they are not patched again.
func (c *Cluster) StartMetricsServerBroken(ctx context.Context, ms MetricsServer) (int, error) {
	if !c.registered || c.metricsPort == 0 {
		return 0, errors.New("starting a broken metrics-server: start it healthy first (StartMetricsServer), so the APIServices name its port")
	}
	// StartMetricsServer calls Started right after the process starts;
	// cancelling there ends its patch of the APIServices and its wait.
	started := make(chan int, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ms.Started = func(port int) {
		started <- port
		cancel()
	}
	_, err := c.StartMetricsServer(sctx, ms)
	select {
	case port := <-started:
		return port, nil
	default:
		return 0, err
	}
}
