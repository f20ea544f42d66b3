package kubelet

import (
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// DefaultAddressTypes is upstream metrics-server's default priority of node
// address types.
var DefaultAddressTypes = []corev1.NodeAddressType{
	corev1.NodeHostName,
	corev1.NodeInternalDNS,
	corev1.NodeInternalIP,
	corev1.NodeExternalDNS,
	corev1.NodeExternalIP,
}

// ResourcePathAnnotation overrides the path of the resource metrics
// endpoint of a node; upstream honours it and node emulators rely on it.
const ResourcePathAnnotation = "metrics.k8s.io/resource-metrics-path"

// hostPort chooses the node's kubelet address: the first address of the
// first type in priority order that the node has, and the kubelet port from
// the node status when useStatusPort and it is set, else defaultPort.
func hostPort(node *corev1.Node, priority []corev1.NodeAddressType, defaultPort int, useStatusPort bool) (string, error) {
	port := defaultPort
	if p := node.Status.DaemonEndpoints.KubeletEndpoint.Port; useStatusPort && p > 0 {
		port = int(p)
	}
	for _, t := range priority {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(port)), nil
			}
		}
	}
	return "", fmt.Errorf("node has none of the address types %v (it has %v); adjust --kubelet-preferred-address-types", priority, addressTypes(node))
}

func addressTypes(node *corev1.Node) []corev1.NodeAddressType {
	out := make([]corev1.NodeAddressType, 0, len(node.Status.Addresses))
	for _, a := range node.Status.Addresses {
		out = append(out, a.Type)
	}
	return out
}
