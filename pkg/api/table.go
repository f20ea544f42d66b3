package api

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// usageColumns are the columns of `kubectl get nodes.metrics.k8s.io` and
// `kubectl get pods.metrics.k8s.io`.
func usageColumns(kind string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the " + kind},
		{Name: "CPU", Type: "string", Format: "quantity", Description: "CPU usage, in cores (summed over containers for a pod)"},
		{Name: "Memory", Type: "string", Format: "quantity", Description: "Memory working set, in bytes (summed over containers for a pod)"},
		{Name: "Window", Type: "string", Format: "duration", Description: "Time between the two samples the CPU rate comes from"},
	}
}

// usageRow is one table row; obj is kept for -o wide and custom columns.
func usageRow(obj runtime.Object, name string, usage corev1.ResourceList, window time.Duration) metav1.TableRow {
	cpu, mem := usage[corev1.ResourceCPU], usage[corev1.ResourceMemory]
	return metav1.TableRow{
		Cells:  []any{name, cpu.String(), mem.String(), duration.HumanDuration(window)},
		Object: runtime.RawExtension{Object: obj},
	}
}

// sumUsage adds up the containers' usage of a pod.
func sumUsage(lists ...corev1.ResourceList) corev1.ResourceList {
	cpu, mem := resource.Quantity{Format: resource.DecimalSI}, resource.Quantity{Format: resource.BinarySI}
	for _, l := range lists {
		if q, ok := l[corev1.ResourceCPU]; ok {
			cpu.Add(q)
		}
		if q, ok := l[corev1.ResourceMemory]; ok {
			mem.Add(q)
		}
	}
	return corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
}

// noHeaders reports whether the table options ask for rows only.
func noHeaders(opts runtime.Object) bool {
	switch o := opts.(type) {
	case *metav1.TableOptions:
		return o != nil && o.NoHeaders
	}
	return false
}
