package fleet

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// Mode is how a simulated kubelet answers.
type Mode string

const (
	// ModeNormal serves both endpoints.
	ModeNormal Mode = ""
	// ModeSummaryOnly answers 404 on /metrics/resource.
	ModeSummaryOnly Mode = "summary-only"
	// ModeResourceOnly answers 404 on /stats/summary.
	ModeResourceOnly Mode = "resource-only"
	// ModeSummary500 fails /stats/summary as a runtime's imageFs error does.
	ModeSummary500 Mode = "summary-500"
	// ModeResource500 fails /metrics/resource with a server error.
	ModeResource500 Mode = "resource-500"
	// ModeError500 fails both endpoints.
	ModeError500 Mode = "error-500"
	// ModeSlow answers after 30s.
	ModeSlow Mode = "slow"
	// ModeGarbage answers 200 with a body that is not metrics.
	ModeGarbage Mode = "garbage"
	// ModeWrongTLSName serves a certificate for another name.
	ModeWrongTLSName Mode = "wrong-tls-name"
)

// Config configures a Fleet.
type Config struct {
	Client kubernetes.Interface
	// Nodes is how many nodes to simulate, named Prefix-00000 and so on.
	Nodes  int
	Prefix string
	// Port is every kubelet's port (default 10250); each node listens on
	// its own loopback address 127.<AddressBase>.x.y.
	Port int
	// AddressBase is the second octet of the nodes' addresses (default 1).
	AddressBase int
	// KubeletCA signs each node's serving certificate.
	KubeletCA *pki.CA
	// Modes sets the initial mode of nodes by index.
	Modes map[int]Mode
	// Authenticate checks the bearer token of scrapes with TokenReview and
	// SubjectAccessReview, as a kubelet with webhook auth does.
	Authenticate bool
	// Parallelism bounds API calls made at once while registering. Default 32.
	Parallelism int
	// NoLeases skips the nodes' Leases: for a control plane without the
	// node lifecycle controller, where nobody reads them.
	NoLeases bool
	// Host, when set, adds one more node, Prefix-host, whose node-level
	// CPU and memory are this machine's, read with cAdvisor.
	Host *HostStats
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Fleet is a running simulation.
type Fleet struct {
	cfg    Config
	nodes  []*node
	byName map[string]*node
	auth   *authCache

	mu      sync.Mutex
	pods    map[string]*pod // namespace/name -> pod on one of our nodes
	running int             // pods whose Running status the API shows

	recording atomic.Bool
	recMu     sync.Mutex
	requests  []Request
}

// Request is one kubelet request seen while recording.
type Request struct {
	Node, Path    string
	Arrived, Done time.Time
}

// maxRecorded bounds what one recording keeps (a 10,000-node fleet at a
// 15 s resolution makes 40,000 requests a minute).
const maxRecorded = 2_000_000

// StartRecording keeps every kubelet request from now on (bounded).
func (f *Fleet) StartRecording() {
	f.recMu.Lock()
	f.requests = nil
	f.recMu.Unlock()
	f.recording.Store(true)
}

// StopRecording ends a recording and returns its requests in arrival order.
func (f *Fleet) StopRecording() []Request {
	f.recording.Store(false)
	f.recMu.Lock()
	defer f.recMu.Unlock()
	out := f.requests
	f.requests = nil
	sort.Slice(out, func(i, j int) bool { return out[i].Arrived.Before(out[j].Arrived) })
	return out
}

func (f *Fleet) record(r Request) {
	f.recMu.Lock()
	if len(f.requests) < maxRecorded {
		f.requests = append(f.requests, r)
	}
	f.recMu.Unlock()
}

// node is one simulated kubelet.
type node struct {
	name  string
	ip    net.IP
	start time.Time
	self  *counter // the node's own usage beyond its pods
	lis   net.Listener
	host  *HostStats // nil for a simulated node

	mu    sync.Mutex
	mode  Mode
	conns map[net.Conn]struct{} // open client connections, closed on a mode change
	pods  map[string]*pod
	hits  map[string]int
}

// pod is a pod running on a simulated node.
type pod struct {
	namespace, name, uid string
	node                 string
	start                time.Time
	containers           []container
	running              bool // the API shows it Running
}

type container struct {
	name string
	cpu  *counter
}

// NodeIP returns the loopback address of node i: 127.<base>.0.1,
// 127.<base>.0.2, ... (base 1 unless set), so two fleets on one machine
// can keep apart.
func (c Config) NodeIP(i int) net.IP {
	n := i + 1
	base := c.AddressBase
	if base == 0 {
		base = 1
	}
	return net.IPv4(127, byte(base+n>>16), byte(n>>8), byte(n))
}

// NodeName returns the name of node i.
func (c Config) NodeName(i int) string { return fmt.Sprintf("%s-%05d", c.Prefix, i) }

// New prepares a fleet; Run starts it.
func New(cfg Config) (*Fleet, error) {
	if cfg.Port == 0 {
		cfg.Port = 10250
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "fleet"
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 32
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Nodes < 0 || cfg.Nodes > 60000 {
		return nil, fmt.Errorf("nodes %d out of range 0..60000", cfg.Nodes)
	}
	f := &Fleet{cfg: cfg, byName: map[string]*node{}, pods: map[string]*pod{}}
	if cfg.Authenticate {
		f.auth = newAuthCache(cfg.Client)
	}
	now := time.Now()
	for i := range cfg.Nodes {
		n := &node{
			name:  cfg.NodeName(i),
			ip:    cfg.NodeIP(i),
			start: now.Add(-time.Hour).Truncate(time.Second),
			mode:  cfg.Modes[i],
			pods:  map[string]*pod{},
			hits:  map[string]int{},
		}
		n.self = newCounter(n.start, usage{milliCPU: 150, memory: 512 << 20})
		f.nodes = append(f.nodes, n)
		f.byName[n.name] = n
	}
	if cfg.Host != nil {
		n := &node{name: cfg.Prefix + "-host", ip: cfg.NodeIP(cfg.Nodes), start: now.Add(-time.Hour).Truncate(time.Second), host: cfg.Host, pods: map[string]*pod{}, hits: map[string]int{}}
		n.self = newCounter(n.start, usage{})
		f.nodes = append(f.nodes, n)
		f.byName[n.name] = n
	}
	return f, nil
}

// SetMode changes how a node's kubelet answers.
func (f *Fleet) SetMode(nodeName string, m Mode) error {
	n, ok := f.byName[nodeName]
	if !ok {
		return fmt.Errorf("no node %s in the fleet", nodeName)
	}
	n.mu.Lock()
	n.mode = m
	conns := n.conns
	n.conns = map[net.Conn]struct{}{}
	n.mu.Unlock()
	// Drop open connections (HTTP/2 ones included), so the next scrape
	// shakes hands again and meets the new mode's certificate.
	for c := range conns {
		_ = c.Close()
	}
	return nil
}

// Hits returns how many requests a node's kubelet got on a path.
func (f *Fleet) Hits(nodeName, path string) int {
	n, ok := f.byName[nodeName]
	if !ok {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits[path]
}

// NodeNames lists the fleet's nodes.
func (f *Fleet) NodeNames() []string {
	out := make([]string, len(f.nodes))
	for i, n := range f.nodes {
		out[i] = n.name
	}
	return out
}

// Run registers the nodes, starts their kubelets and plays the kubelet for
// their pods until ctx ends. It returns once everything is up; errors
// after that are logged.
func (f *Fleet) Run(ctx context.Context) error {
	if err := f.serveKubelets(ctx); err != nil {
		return err
	}
	if err := f.registerNodes(ctx); err != nil {
		return err
	}
	if !f.cfg.NoLeases {
		go f.renewLeases(ctx)
	}
	return f.watchPods(ctx)
}

// RunningPods counts the fleet's pods that the API shows Running.
func (f *Fleet) RunningPods() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// TotalHits sums the requests every node's kubelet got on its metrics
// endpoints, and returns the smallest and largest count of one node.
func (f *Fleet) TotalHits() (total, minNode, maxNode int) {
	minNode = -1
	for _, n := range f.nodes {
		n.mu.Lock()
		h := n.hits["/stats/summary"] + n.hits["/metrics/resource"]
		n.mu.Unlock()
		total += h
		if minNode < 0 || h < minNode {
			minNode = h
		}
		maxNode = max(maxNode, h)
	}
	return total, max(minNode, 0), maxNode
}
