package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

const (
	leaseDuration = 40 * time.Second
	leaseRenew    = 10 * time.Second
	// FleetLabel marks the fleet's nodes.
	FleetLabel = "fleet.kubemetrics.io/simulated"
)

// forEach runs fn for every node (but deleted ones) with bounded parallelism and returns the
// first error.
func (f *Fleet) forEach(ctx context.Context, fn func(context.Context, *node) error) error {
	sem := make(chan struct{}, f.cfg.Parallelism)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, n := range f.nodes {
		if ctx.Err() != nil {
			break
		}
		n.mu.Lock()
		deleted := n.deleted
		n.mu.Unlock()
		if deleted {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, n); err != nil {
				once.Do(func() { first = err })
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func (f *Fleet) registerNodes(ctx context.Context) error {
	start := time.Now()
	err := f.forEach(ctx, f.registerNode)
	if err == nil {
		f.cfg.Logf("registered %d nodes in %v", len(f.nodes), time.Since(start).Round(time.Millisecond))
	}
	return err
}

func (f *Fleet) registerNode(ctx context.Context, n *node) error {
	nodes := f.cfg.Client.CoreV1().Nodes()
	obj := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				"kubernetes.io/hostname": n.name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				FleetLabel:               "true",
			},
		},
	}
	created, err := nodes.Create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = nodes.Get(ctx, n.name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.name, err)
	}
	now := metav1.Now()
	ip := n.addr()
	created.Status = corev1.NodeStatus{
		Capacity:    capacity(n.shape, 0),
		Allocatable: capacity(n.shape, evictionReserve),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", LastHeartbeatTime: now, LastTransitionTime: now},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip.String()},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(f.cfg.Port)}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "simulated://1.0", KernelVersion: "6.1.0", OSImage: "kubemetrics fleet",
		},
	}
	if n.shape.Swap > 0 {
		// As the kubelet reports a machine with swap (NodeSwap, on by
		// default): kubectl top node --show-swap takes SWAP(%) from it.
		swap := n.shape.Swap
		created.Status.NodeInfo.Swap = &corev1.NodeSwapStatus{Capacity: &swap}
	}
	// Controllers (node lifecycle, taints) may touch a new node at once:
	// on a conflict, read it again and set the status again.
	status := created.Status
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		_, err := nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			latest, gerr := nodes.Get(ctx, n.name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			latest.Status = status
			created = latest
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("setting the status of node %s: %w", n.name, err)
	}
	if f.cfg.NoLeases {
		return nil
	}
	return f.renewLease(ctx, n)
}

// capacity is a node's resources, less reserve bytes of memory: its
// capacity with none, its allocatable with the kubelet's eviction reserve.
// Its ephemeral storage is its root filesystem's capacity (allocatable
// less the kubelet's default nodefs.available<10% threshold).
func capacity(s NodeShape, reserve int64) corev1.ResourceList {
	disk, _ := s.disk()
	if reserve > 0 {
		disk -= disk / 10
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(s.Cores, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(s.Memory-reserve, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(110, resource.DecimalSI),
	}
}

func (f *Fleet) renewLease(ctx context.Context, n *node) error {
	leases := f.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secs := int32(leaseDuration.Seconds())
		holder := n.name
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.name},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// renewLeases keeps every node's Lease fresh so the node lifecycle
// controller keeps the nodes Ready.
func (f *Fleet) renewLeases(ctx context.Context) {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := f.forEach(ctx, f.renewLease); err != nil && ctx.Err() == nil {
			f.cfg.Logf("renewing leases: %v", err)
		}
	}
}
