package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// createPods binds pods straight to nodes (no scheduler), parallel but
// bounded; pods that already exist are kept.
func createPods(ctx context.Context, client kubernetes.Interface, nodes []string, perNode, containers, parallel int) error {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for ni, node := range nodes {
		if strings.HasSuffix(node, "-host") {
			continue
		}
		for p := range perNode {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				pod := benchPod(ni, p, node, containers)
				_, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("creating pod %s: %w", pod.Name, err)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// waitPodsRunning waits until the fleet has seen want of its pods Running.
func waitPodsRunning(ctx context.Context, fl *fleet.Fleet, want int, limit time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(limit)
	last := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := fl.RunningPods()
		if n >= want {
			logf("%d pods running", n)
			return nil
		}
		if time.Since(last) > 30*time.Second {
			logf("%d of %d pods running", n, want)
			last = time.Now()
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("%d of %d pods running after %v", fl.RunningPods(), want, limit)
}

// timePodMetadataList lists every Running pod's metadata as a server's pod
// informer does at start (pages of 500, protobuf, PartialObjectMetadata)
// and returns how long the kube-apiserver took, with nothing else running:
// the floor under a server's first complete pod list. It returns the
// number of pods listed too.
func timePodMetadataList(ctx context.Context, kubeconfig string) (time.Duration, int, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 0, 0, err
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return 0, 0, err
	}
	pods := client.Resource(corev1.SchemeGroupVersion.WithResource("pods"))
	start := time.Now()
	n := 0
	opts := metav1.ListOptions{FieldSelector: "status.phase=Running", Limit: 500}
	for page := 0; page < 100000; page++ {
		l, err := pods.List(ctx, opts)
		if err != nil {
			return 0, n, fmt.Errorf("listing pods' metadata, page %d: %w", page, err)
		}
		n += len(l.Items)
		if l.Continue == "" {
			return time.Since(start), n, nil
		}
		opts.Continue = l.Continue
	}
	return 0, n, fmt.Errorf("listing pods' metadata: more than 100,000 pages")
}
