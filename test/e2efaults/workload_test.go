package e2efaults

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// namespace holds every pod of the workload.
const namespace = "faults"

// roles assigns the fleet's nodes to scenarios by index; the nodes of
// different scenarios are disjoint, so the scenarios run at once.
type roles struct {
	total int
	// healthy always answer at once; the HPA's pods run on them.
	healthy []string
	// hanging accept a request and never answer, from the start.
	hanging []string
	// slowUnder answers one second under the request timeout, slowOver one
	// second over it, from the faults' start.
	slowUnder, slowOver string
	// flapping fail every other scrape from the faults' start.
	flapping []string
	// skewFromStart have had their clocks off since before our server
	// started; skewJump jump by as much at the faults' start.
	skewFromStart, skewJump map[string]time.Duration
	// churn is deleted and added again on a new address.
	churn string
	// doomed is a healthy node whose Node object is deleted while the
	// kube-apiserver is down (its kubelet keeps answering).
	doomed string
}

// Sizes: 14 hanging nodes are 3.5 times --kubelet-max-concurrency; 5
// flapping nodes are over 10% of the 47.
const (
	healthyNodes  = 20
	hangingNodes  = 14
	flappingNodes = 5
	skew          = 5 * time.Minute
)

func newRoles() roles {
	var r roles
	name := func() string {
		n := fmt.Sprintf("flt-%05d", r.total)
		r.total++
		return n
	}
	for range healthyNodes {
		r.healthy = append(r.healthy, name())
	}
	r.doomed = r.healthy[len(r.healthy)-1]
	for range hangingNodes {
		r.hanging = append(r.hanging, name())
	}
	r.slowUnder, r.slowOver = name(), name()
	for range flappingNodes {
		r.flapping = append(r.flapping, name())
	}
	r.skewFromStart = map[string]time.Duration{name(): skew, name(): -skew}
	r.skewJump = map[string]time.Duration{name(): skew, name(): -skew}
	r.churn = name()
	return r
}

func (r roles) initialModes() map[int]fleet.Mode {
	m := map[int]fleet.Mode{}
	for i := healthyNodes; i < healthyNodes+hangingNodes; i++ {
		m[i] = fleet.ModeHang
	}
	return m
}

// skewed lists every node whose clock is off.
func (r roles) skewed() []string {
	var out []string
	for n := range r.skewFromStart {
		out = append(out, n)
	}
	for n := range r.skewJump {
		out = append(out, n)
	}
	return out
}

// loadPod is the pod that runs on node i: on a large machine a database
// of two containers of 18 GiB each, elsewhere one service of 1.5 GiB.
func loadPod(node string, i int) *corev1.Pod {
	containers, usage := []string{"app"}, "cpu=350m,memory=1536Mi"
	if fleet.IsLarge(i) {
		containers, usage = []string{"db", "replica"}, "cpu=1500m,memory=18Gi"
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "load-" + node, Namespace: namespace,
			Labels: map[string]string{"app": "load"}, Annotations: map[string]string{fleet.UsageAnnotation: usage}},
		Spec: corev1.PodSpec{NodeName: node},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.invalid/" + c + ":1"})
	}
	return p
}

// The HPA's Deployment: 150m of a 500m request is 30% against a 50%
// target, so it stays at its two replicas while its metric flows.
const (
	webName         = "web"
	webReplicas     = 2
	webMilliCPU     = 150
	webRequestMilli = 500
	webUtilization  = 30
)

func webDeployment(nodes []string) *appsv1.Deployment {
	labels := map[string]string{"app": webName}
	replicas := int32(webReplicas)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: webName, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{fleet.UsageAnnotation: fmt.Sprintf("cpu=%dm,memory=200Mi", webMilliCPU)}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    *resource.NewMilliQuantity(webRequestMilli, resource.DecimalSI),
						corev1.ResourceMemory: *resource.NewQuantity(256<<20, resource.BinarySI),
					}}}},
					// Healthy nodes only, so the HPA's reading tells how the
					// server treats healthy nodes while others fail.
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
						NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
							Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: nodes,
						}}}},
					}}},
				},
			},
		},
	}
}

func webHPA() *autoscalingv2.HorizontalPodAutoscaler {
	minReplicas, target := int32(webReplicas), int32(50)
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: webName, Namespace: namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: webName},
			MinReplicas:    &minReplicas,
			MaxReplicas:    6,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
			}}},
		},
	}
}

// deployWorkload creates one load pod bound to every node, the web
// Deployment on healthy nodes and its HPA, and waits until every pod runs.
func (e *env) deployWorkload(ctx context.Context) error {
	_, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods cannot be created before the namespace's default ServiceAccount.
	if err := poll(ctx, time.Minute, func() error {
		_, err := e.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	for i, n := range e.fleet.NodeNames() {
		if _, err := e.client.CoreV1().Pods(namespace).Create(ctx, loadPod(n, i), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating the load pod of %s: %w", n, err)
		}
	}
	var web []string
	for _, n := range e.roles.healthy {
		if n != e.roles.doomed {
			web = append(web, n)
		}
	}
	if _, err := e.client.AppsV1().Deployments(namespace).Create(ctx, webDeployment(web), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Create(ctx, webHPA(), metav1.CreateOptions{}); err != nil {
		return err
	}
	want := e.roles.total + webReplicas
	return poll(ctx, 2*time.Minute, func() error {
		pods, err := e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running != want {
			return fmt.Errorf("%d of %d pods running", running, want)
		}
		return nil
	})
}

// expectation is what a node or pod should show: the fleet's known load.
type expectation struct {
	milliCPU int64
	memory   int64 // bytes
}

// expectations derive every node's and pod's usage from the pods bound in
// the API and the fleet's node shapes: a node is its system load plus its
// pods'.
func (e *env) expectations(ctx context.Context) (nodes, pods map[string]expectation, err error) {
	list, err := e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	nodes, pods = map[string]expectation{}, map[string]expectation{}
	for _, n := range e.fleet.NodeNames() {
		s, _ := e.fleet.NodeShape(n)
		nodes[n] = expectation{milliCPU: s.SystemMilliCPU, memory: s.SystemMemory}
	}
	for _, p := range list.Items {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue
		}
		cpu, mem, err := fleet.ParseUsage(p.Annotations[fleet.UsageAnnotation])
		if err != nil {
			return nil, nil, fmt.Errorf("pod %s: %w", p.Name, err)
		}
		k := int64(len(p.Spec.Containers))
		pods[p.Name] = expectation{milliCPU: k * cpu, memory: k * mem}
		n := nodes[p.Spec.NodeName]
		n.milliCPU += k * cpu
		n.memory += k * mem
		nodes[p.Spec.NodeName] = n
	}
	return nodes, pods, nil
}

// poll calls check every second until it passes, ctx ends or limit passes.
func poll(ctx context.Context, limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %v: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
