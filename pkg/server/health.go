package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/storage"
)

// The check names are upstream metrics-server's, so probes and dashboards
// carry over unchanged.
const (
	checkStorageReady     = "metric-storage-ready"
	checkInformerSync     = "metric-informer-sync"
	checkMetadataSync     = "metadata-informer-sync"
	checkCollectionTimely = "metric-collection-timely"
)

// scrapeProgress is what readiness asks of the scraper.
type scrapeProgress interface {
	// Warm reports whether the start-up cycle and the one after it have
	// ended (so nodes that answered have rates), and how many nodes the
	// last cycle selected.
	Warm() (warm bool, nodes int)
}

// servableStore is what readiness asks of the store.
type servableStore interface {
	Servable() storage.Servable
}

type lastCycler interface{ LastCycle() time.Time }

// storageReady passes once the server can answer as a complete cycle
// would, the meaning upstream gave metric-storage-ready in its fix for
// kubernetes-sigs/metrics-server#1816:
//   - the start-up cycle and its follow-up have ended (rates exist), and
//   - no node was selected by the last cycle (an empty cluster: the empty
//     answer is the right one), or
//   - at least one node has usage to serve, and at least one pod does
//     unless no pod is known to exist on the scraped nodes: no kubelet
//     reported one and podsRunning says none runs.
//
// So nodes whose kubelets report no container (upstream's case: a
// cAdvisor that lost them) keep the server unready while pods run, and a
// cluster without pods, or without nodes, is ready after two cycles.
// podsRunning reports whether a running pod is known on the scraped nodes
// independently of the kubelets; nil means never.
func storageReady(sc scrapeProgress, st servableStore, podsRunning func() bool) healthz.HealthChecker {
	return healthz.NamedCheck(checkStorageReady, func(*http.Request) error {
		warm, nodes := sc.Warm()
		if !warm {
			return errors.New("the start-up scrape cycle and its follow-up have not both ended yet")
		}
		if nodes == 0 {
			return nil
		}
		got := st.Servable()
		if !got.Nodes {
			return fmt.Errorf("no node of the %d scraped has metrics to serve", nodes)
		}
		switch {
		case got.Pods:
			return nil
		case got.PodsReported:
			return errors.New("the kubelets report pods but none has metrics to serve")
		case podsRunning != nil && podsRunning():
			return errors.New("pods are running but no kubelet reports any: no pod has metrics to serve")
		}
		return nil
	})
}

// informersSynced fails until every named informer has synced.
func informersSynced(name string, synced map[string]func() bool) healthz.HealthChecker {
	return healthz.NamedCheck(name, func(*http.Request) error {
		for what, ok := range synced {
			if !ok() {
				return fmt.Errorf("the %s informer has not synced yet", what)
			}
		}
		return nil
	})
}

// collectionTimely fails when the last scrape cycle ended more than one and
// a half resolutions ago, a sign that the scrape loop is stuck and the
// process should be restarted. It passes before the first cycle has ended
// (a cycle is bounded by one resolution, and informers may still be syncing).
func collectionTimely(s lastCycler, resolution time.Duration, clk clock.PassiveClock) healthz.HealthChecker {
	limit := resolution * 3 / 2
	return healthz.NamedCheck(checkCollectionTimely, func(*http.Request) error {
		last := s.LastCycle()
		if last.IsZero() {
			return nil
		}
		if since := clk.Since(last); since > limit {
			return fmt.Errorf("the last scrape cycle ended %v ago, more than %v", since.Round(time.Second), limit)
		}
		return nil
	})
}
