package manifests

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The rule every render of the Deployment keeps (kustomize here, the chart
// in test/chart): when two of its pods cannot share a node, a rollout must
// not need a node more than the replicas, or it stalls on a cluster with
// as many nodes as replicas (issue 15, defect 6; test/e2erollout shows it
// on the real scheduler).

// OwnNode says why two pods of d cannot run on one node, or "" when they
// can: a port on the host (every container port is one with hostNetwork,
// the API defaults hostPort to it) or a required pod anti-affinity by
// hostname that selects the pods' own labels.
func OwnNode(d appsv1.Deployment) string {
	spec := d.Spec.Template.Spec
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if spec.HostNetwork {
				return fmt.Sprintf("port %d on the host network", p.ContainerPort)
			}
			if p.HostPort != 0 {
				return fmt.Sprintf("host port %d", p.HostPort)
			}
		}
	}
	if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil {
		return ""
	}
	for _, term := range spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err == nil && term.TopologyKey == corev1.LabelHostname && sel.Matches(k8slabels.Set(d.Spec.Template.Labels)) {
			return "a required anti-affinity by hostname against its own pods"
		}
	}
	return ""
}

// RollsOutInPlace says why d's strategy needs a surge pod, or nil: it must
// be Recreate, or a rolling update whose maxSurge resolves to 0 at d's
// replicas and whose maxUnavailable resolves to at least 1 (rounded as the
// deployment controller rounds them: surge up, unavailable down; unset
// means the API's 25%).
func RollsOutInPlace(d appsv1.Deployment) error {
	s := d.Spec.Strategy
	if s.Type == appsv1.RecreateDeploymentStrategyType {
		return nil
	}
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = int(*d.Spec.Replicas)
	}
	quarter := intstr.FromString("25%")
	surge, unavailable := &quarter, &quarter
	if ru := s.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = ru.MaxUnavailable
		}
	}
	sv, err := intstr.GetScaledValueFromIntOrPercent(surge, replicas, true)
	if err != nil {
		return fmt.Errorf("maxSurge %s: %w", surge.String(), err)
	}
	uv, err := intstr.GetScaledValueFromIntOrPercent(unavailable, replicas, false)
	if err != nil {
		return fmt.Errorf("maxUnavailable %s: %w", unavailable.String(), err)
	}
	if sv != 0 || uv < 1 {
		return fmt.Errorf("maxSurge %s (%d pods) and maxUnavailable %s (%d) at %d replicas: a rollout needs a node more than the replicas, want maxSurge 0 and maxUnavailable at least 1",
			surge.String(), sv, unavailable.String(), uv, replicas)
	}
	return nil
}
