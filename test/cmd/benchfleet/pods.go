package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
