package kubelet

// Bounds on what one kubelet answer may hold. A kubelet reports the pods
// bound to its node, whose names the API server validated; an answer past
// these bounds is damaged or hostile, and decoding it would cost memory
// that the scrapes of every other node share (--kubelet-max-concurrency
// answers, 64 by default, are decoded at once: see package gate). At these bounds one
// decode holds at most about 3 MiB (TestDecodeMemoryBounded).
const (
	// maxNamespace and maxContainerName: DNS labels; maxPodName: a DNS
	// subdomain. Bytes.
	maxNamespace     = 63
	maxPodName       = 253
	maxContainerName = 63
	// maxPods is over nine times the kubelet's default --max-pods (110)
	// and twice the largest tested in production distributions (2,500).
	maxPods = 5000
	// maxContainers counts every container of every pod of one answer:
	// four a pod at 2,500 pods.
	maxContainers = 10000
	// maxNameBytes bounds the names of one answer together: the
	// namespace and name of each pod and the name of each container it
	// reports. 2,500 pods of 60-byte names in 30-byte namespaces with
	// three containers of 30-byte names take 0.5 MiB.
	maxNameBytes = 1 << 20
)
