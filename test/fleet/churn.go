package fleet

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeleteNode removes a node as when its machine goes away: its kubelet
// stops listening (open connections are closed) and its Node object and
// Lease are deleted. Its pods stay bound in the API, as the pod garbage
// collector's to delete. AddNode brings it back. Run must have started.
func (f *Fleet) DeleteNode(ctx context.Context, nodeName string) error {
	n, ok := f.byName[nodeName]
	if !ok {
		return fmt.Errorf("no node %s in the fleet", nodeName)
	}
	n.mu.Lock()
	if n.deleted {
		n.mu.Unlock()
		return fmt.Errorf("node %s is already deleted", nodeName)
	}
	n.deleted = true
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	err := f.cfg.Client.CoreV1().Nodes().Delete(ctx, nodeName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting node %s: %w", nodeName, err)
	}
	err = f.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, nodeName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the lease of node %s: %w", nodeName, err)
	}
	return nil
}

// AddNode registers a node removed by DeleteNode again under the same
// name, on a new loopback address (one no node of the fleet used) with a
// serving certificate for it, as a machine that rejoins after a reinstall.
// Its mode and faults are as before. It returns the new address. Run
// must have started.
func (f *Fleet) AddNode(ctx context.Context, nodeName string) (net.IP, error) {
	n, ok := f.byName[nodeName]
	if !ok {
		return nil, fmt.Errorf("no node %s in the fleet", nodeName)
	}
	if f.runCtx == nil {
		return nil, fmt.Errorf("node %s: the fleet is not running; call Run first", nodeName)
	}
	f.mu.Lock()
	ip := f.cfg.NodeIP(f.nextAddr)
	f.nextAddr++
	f.mu.Unlock()
	n.mu.Lock()
	if !n.deleted {
		n.mu.Unlock()
		return nil, fmt.Errorf("node %s is not deleted; DeleteNode it first", nodeName)
	}
	n.ip, n.deleted, n.cached = ip, false, [2]cachedSummary{}
	n.mu.Unlock()
	if err := f.serveNode(f.runCtx, n); err != nil {
		return nil, err
	}
	if err := f.registerNode(ctx, n); err != nil {
		return nil, err
	}
	return ip, nil
}
