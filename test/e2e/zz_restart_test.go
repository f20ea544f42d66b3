package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRestartRecovers runs last (by file name): it restarts our server.
func TestRestartRecovers(t *testing.T) {
	setupTop(t)
	ctx := context.Background()
	mc := metricsClient(t)
	cluster.StopMetricsServer()
	stopped := time.Now()
	if _, err := cluster.StartMetricsServer(ctx, serverArgs); err != nil {
		t.Fatal(err)
	}
	t.Logf("APIServices Available again %v after the stop", time.Since(stopped).Round(time.Second))
	// Data must be back within two resolutions of the restart.
	waitFor(t, 2*resolution+5*time.Second, func() error {
		nodes, err := mc.MetricsV1().NodeMetricses().List(ctx, metav1.ListOptions{LabelSelector: "fleet.kubemetrics.io/simulated=true"})
		if err != nil {
			return err
		}
		if len(nodes.Items) != allNodes {
			return fmt.Errorf("%d of %d nodes served after the restart", len(nodes.Items), allNodes)
		}
		pods, err := mc.MetricsV1().PodMetricses("e2e-top").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) != 4 {
			return fmt.Errorf("%d of 4 pods served after the restart", len(pods.Items))
		}
		return nil
	})
	t.Logf("data back %v after the stop", time.Since(stopped).Round(time.Second))
}
