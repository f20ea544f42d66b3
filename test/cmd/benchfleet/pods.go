package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	var cs []corev1.Container
	for c := range containers {
		cs = append(cs, corev1.Container{Name: fmt.Sprintf("c%d", c), Image: "registry.invalid/bench:1"})
	}
	noToken := false
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
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d-%02d", ni, p), Namespace: "default", Labels: map[string]string{"bench": "fleet", "app": fmt.Sprintf("app-%d", p)},
						Annotations: map[string]string{fleet.UsageAnnotation: "cpu=50m,memory=64Mi"}},
					Spec: corev1.PodSpec{NodeName: node, Containers: cs, AutomountServiceAccountToken: &noToken},
				}
				_, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
				if err != nil && !strings.Contains(err.Error(), "already exists") {
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
