package certbootstrap

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// TestReplicasRaceToCreate: two servers start together, both find no
// Secret and both create one; the loser re-reads and both serve the
// winner's certificate.
func TestReplicasRaceToCreate(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	dirs := initReplicasTogether(t, c)
	if n := c.writes("create"); n != 2 {
		t.Errorf("%d creates, want 2 (both replicas found no Secret)", n)
	}
	s := c.secret(t)
	for i, dir := range dirs {
		if !servesCert(readFiles(t, dir), s.Data[KeyCert]) {
			t.Errorf("replica %d serves a certificate that is not the Secret's", i)
		}
	}
	if !bytes.Equal(c.apiService(t, v1beta1API).Spec.CABundle, s.Data[KeyCA]) {
		t.Error("the APIService's caBundle is not the Secret's ca.crt")
	}
}

// TestReplicasRaceToRenew: two servers find the serving certificate due for
// renewal at the same moment and both update the Secret at the
// resourceVersion they read; one gets Conflict, re-reads, and adopts the
// other's renewal.
func TestReplicasRaceToRenew(t *testing.T) {
	c := newCluster(t, metricsAPIService(v1API), metricsAPIService(v1beta1API))
	made := time.Now().Add(-300 * 24 * time.Hour)
	if err := c.bootstrapper(t, t.TempDir(), newFakeClock(made), 0).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := c.secret(t)
	dirs := initReplicasTogether(t, c)
	conflicts := 0
	for _, a := range c.kube.Actions() {
		if a.GetVerb() == "update" {
			conflicts++
		}
	}
	if conflicts != 2 {
		t.Errorf("%d updates, want 2 (one wins, one gets Conflict)", conflicts)
	}
	after := c.secret(t)
	if bytes.Equal(after.Data[KeyCert], before.Data[KeyCert]) {
		t.Fatal("the serving certificate was not renewed")
	}
	if !bytes.Equal(after.Data[KeyCA], before.Data[KeyCA]) {
		t.Error("the CA changed")
	}
	for i, dir := range dirs {
		if !servesCert(readFiles(t, dir), after.Data[KeyCert]) {
			t.Errorf("replica %d serves a certificate that is not the Secret's", i)
		}
	}
}

// initReplicasTogether runs Init of two bootstrappers of c at once (real
// clock, each writing its files to its own folder), each held at its first
// read of the Secret until both have read it, so that both act on the same
// state; it fails the test when either Init fails and returns their
// folders.
func initReplicasTogether(t *testing.T, c *cluster) []string {
	t.Helper()
	dirs := []string{t.TempDir(), t.TempDir()}
	replicas := []*Bootstrapper{c.bootstrapper(t, dirs[0], nil, 0), c.bootstrapper(t, dirs[1], nil, 0)}
	holdFirstReads(2, replicas...)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { errs[i] = r.Init(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	return dirs
}
