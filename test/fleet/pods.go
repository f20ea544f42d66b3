package fleet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// watchPods plays the kubelet for pods bound to the fleet's nodes.
func (f *Fleet) watchPods(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(f.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" }))
	inf := factory.Core().V1().Pods().Informer()
	// Managed fields are most of a pod's bytes and nothing here reads them;
	// an update without them keeps the stored ones.
	if err := inf.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
		}
		return obj, nil
	}); err != nil {
		return err
	}
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("pod informer did not sync: %w", ctx.Err())
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for range f.cfg.Parallelism {
		go func() {
			for {
				key, quit := queue.Get()
				if quit {
					return
				}
				if err := f.syncPod(ctx, inf.GetIndexer(), key); err != nil && ctx.Err() == nil {
					f.cfg.Logf("pod %s: %v", key, err)
					queue.AddRateLimited(key)
				} else {
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}()
	}
	return nil
}

// syncPod brings one pod to what a kubelet would make of it.
func (f *Fleet) syncPod(ctx context.Context, idx cache.Indexer, key string) error {
	obj, exists, err := idx.GetByKey(key)
	if err != nil {
		return err
	}
	if !exists {
		f.forgetPod(key)
		return nil
	}
	p := obj.(*corev1.Pod)
	n, ours := f.byName[p.Spec.NodeName]
	if !ours {
		return nil
	}
	if p.DeletionTimestamp != nil {
		f.forgetPod(key)
		zero := int64(0)
		err := f.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	u, err := parseUsage(p.Annotations[UsageAnnotation])
	if err != nil {
		f.cfg.Logf("pod %s: bad %s annotation: %v; using defaults", key, UsageAnnotation, err)
	}
	now := f.cfg.Clock.Now()
	f.mu.Lock()
	state, known := f.pods[key]
	if known && state.uid != string(p.UID) {
		known = false
		if state.running {
			f.running--
		}
	}
	if !known {
		start := now
		if p.Status.StartTime != nil && p.Status.Phase == corev1.PodRunning {
			start = p.Status.StartTime.Time
		}
		state = &pod{namespace: p.Namespace, name: p.Name, uid: string(p.UID), node: n.name, start: start}
		for j, c := range p.Spec.Containers {
			cs := containerStart(start, p.UID, j)
			state.containers = append(state.containers, container{name: c.Name, cpu: newCounter(cs, u)})
		}
		f.pods[key] = state
	}
	if p.Status.Phase == corev1.PodRunning && !state.running {
		state.running = true
		f.running++
	}
	f.mu.Unlock()
	if known {
		for _, c := range state.containers {
			c.cpu.set(now, u)
		}
	} else {
		n.mu.Lock()
		n.pods[key] = state
		n.cached = [2]cachedSummary{}
		n.mu.Unlock()
	}
	if p.Status.Phase == corev1.PodRunning {
		return nil
	}
	return f.markRunning(ctx, p, n, state)
}

func (f *Fleet) forgetPod(key string) {
	f.mu.Lock()
	p, ok := f.pods[key]
	delete(f.pods, key)
	if ok && p.running {
		f.running--
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	if n, ok := f.byName[p.node]; ok {
		n.mu.Lock()
		delete(n.pods, key)
		n.cached = [2]cachedSummary{}
		n.mu.Unlock()
	}
}

// markRunning writes the status a kubelet reports once every container
// runs and is ready.
func (f *Fleet) markRunning(ctx context.Context, p *corev1.Pod, n *node, state *pod) error {
	p = p.DeepCopy()
	p.Status = RunningStatus(p, n.addr().String(), metav1.NewTime(state.start))
	_, err := f.cfg.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// RunningStatus is the status a kubelet on the node at nodeIP reports for
// pod started at start once every container runs (each from its
// containerStart) and is ready; what it does not
// set (the QoS class the apiserver chose, ...) stays as it was.
func RunningStatus(pod *corev1.Pod, nodeIP string, start metav1.Time) corev1.PodStatus {
	ip := PodIP(pod.UID)
	st := *pod.Status.DeepCopy()
	st.Phase = corev1.PodRunning
	st.HostIP, st.HostIPs = nodeIP, []corev1.HostIP{{IP: nodeIP}}
	st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	st.StartTime = &start
	st.ContainerStatuses = nil
	ready := start
	for i, c := range pod.Spec.Containers {
		started := true
		at := metav1.NewTime(containerStart(start.Time, pod.UID, i))
		ready = at
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "simulated://" + c.Image,
			ContainerID: fmt.Sprintf("simulated://%s-%d", pod.UID, i),
			Ready:       true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
		})
	}
	st.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: start},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: start},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: ready},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: ready},
	}
	return st
}

// containerStart is when container j of a pod whose sandbox started at
// podStart started: 0.2 to 1.2 s later, at microsecond precision, as a
// runtime pulls and starts containers one after another. The kubelet
// prints it to the nanosecond in /metrics/resource and to the second in
// /stats/summary.
func containerStart(podStart time.Time, uid types.UID, j int) time.Time {
	h := fnv32(uid) + uint32(j)*7_919
	return podStart.Add(200*time.Millisecond + time.Duration(j)*150*time.Millisecond + time.Duration(h%850_000)*time.Microsecond)
}

func fnv32(uid types.UID) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(uid); i++ {
		h = (h ^ uint32(uid[i])) * 16777619
	}
	return h
}

// PodIP derives a loopback pod IP from the pod's UID: it is only a status
// field, nothing is sent to it.
func PodIP(uid types.UID) string {
	h := fnv32(uid)
	return fmt.Sprintf("127.2.%d.%d", byte(h>>8), byte(h)|1)
}
