package api

import (
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/points"
)

// freshness records how old the served metrics are.
type freshness struct {
	hist  *metrics.HistogramVec
	clock clock.PassiveClock
}

func newFreshness(reg metrics.KubeRegistry, clk clock.PassiveClock) *freshness {
	h := metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "metrics_server",
		Subsystem: "api",
		Name:      "metric_freshness_seconds",
		Help:      "Age of the metrics served, from the sample time to the request, in seconds.",
		Buckets:   metrics.ExponentialBuckets(1, 1.364, 20),
	}, []string{})
	if reg != nil {
		reg.MustRegister(h)
	}
	return &freshness{hist: h, clock: clk}
}

// observe records the age of samples taken at the given times.
func (f *freshness) observe(timestamps ...time.Time) {
	now := f.clock.Now()
	o := f.hist.WithLabelValues()
	for _, t := range timestamps {
		o.Observe(now.Sub(t).Seconds())
	}
}

// observePods records the age of the pods' samples.
func (f *freshness) observePods(us []points.PodUsage) {
	now := f.clock.Now().UnixNano()
	o := f.hist.WithLabelValues()
	for i := range us {
		o.Observe(float64(now-us[i].Timestamp) / 1e9)
	}
}
