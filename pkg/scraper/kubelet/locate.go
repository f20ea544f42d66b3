package kubelet

import (
	corev1 "k8s.io/api/core/v1"
)

// Locate returns where the client reaches node: the kubelet's host:port
// ("" when the node has no address of the configured types) and the path
// it asks now. In auto mode that is /stats/summary while the node is on
// its fallback, else the resource path, so after a success it is the
// endpoint that answered. It makes no request.
func (c *Client) Locate(node *corev1.Node) (address, endpoint string) {
	address, err := hostPort(node, c.cfg.AddressTypes, c.cfg.DefaultPort, c.cfg.UseNodeStatusPort)
	if err != nil {
		address = ""
	}
	switch {
	case c.cfg.Endpoint == EndpointSummary:
		return address, summaryPath
	case c.cfg.Endpoint == EndpointResource:
		return address, c.resourcePathFor(node)
	case c.onFallback(node.Name):
		return address, summaryPath
	}
	return address, c.resourcePathFor(node)
}
