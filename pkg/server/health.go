package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/utils/clock"
)

// The check names are upstream metrics-server's, so probes and dashboards
// carry over unchanged.
const (
	checkStorageReady     = "metric-storage-ready"
	checkInformerSync     = "metric-informer-sync"
	checkMetadataSync     = "metadata-informer-sync"
	checkCollectionTimely = "metric-collection-timely"
)

type readiness interface{ Ready() bool }

type lastCycler interface{ LastCycle() time.Time }

// storageReady fails until the store has something to serve.
func storageReady(s readiness) healthz.HealthChecker {
	return healthz.NamedCheck(checkStorageReady, func(*http.Request) error {
		if !s.Ready() {
			return errors.New("no metrics to serve yet")
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
