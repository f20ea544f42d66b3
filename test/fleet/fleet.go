package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/certs/pki"
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
	// Shape gives node i its capacity and the load outside its pods;
	// nil is DefaultShape (every third node a large machine).
	Shape func(i int) NodeShape
	// SampleInterval is how often each node's kubelet samples its stats,
	// on a grid with a sub-second phase of its own; default one second.
	// A whole number of seconds keeps summary rates exact (see stats.go).
	SampleInterval time.Duration
	// Authenticate checks the bearer token of scrapes with TokenReview and
	// SubjectAccessReview, as a kubelet with webhook auth does.
	Authenticate bool
	// Parallelism bounds API calls made at once while registering. Default 32.
	Parallelism int
	// NoLeases skips the nodes' Leases: for a control plane without the
	// node lifecycle controller, where nobody reads them.
	NoLeases bool
	// Host, when set, adds one more node, Prefix-host, whose node-level
	// CPU and memory are this machine's, read with cAdvisor, and whose
	// capacity is this machine's cores and memory.
	Host *HostStats
	// FastResource renders /metrics/resource with the fleet's own writer
	// instead of the kubelet's collector: the same bytes (a test holds it
	// to that) at a tenth of the cost, for benchmarks of thousands of
	// nodes. The summary is always the kubelet's handler.
	FastResource bool
	// Clock is when samples are taken; nil is the real clock. Faults
	// (delays, flapping) always run on the real clock.
	Clock clock.PassiveClock
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Fleet is a running simulation.
type Fleet struct {
	cfg    Config
	nodes  []*node
	byName map[string]*node // never changes after New
	auth   *authCache
	stats  http.Handler // the kubelet's /stats/ handler, shared by every node
	// processStart is when the fleet's kubelets "started", in Unix
	// seconds, as promhttp's Process-Start-Time-Unix header says.
	processStart string

	// Set by Run: the end of the fleet, and what serves a node's wrong
	// TLS name.
	runCtx    context.Context
	stopped   <-chan struct{}
	wrongCert *tls.Certificate
	// nextAddr is the index of the next unused address, for nodes added
	// again (guarded by mu).
	nextAddr int

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
	name     string
	shape    NodeShape
	start    time.Time     // boot time
	phase    time.Duration // sub-second offset of its sampling grid
	every    time.Duration // its sampling interval
	clock    clock.PassiveClock
	self     *counter     // the node's own usage beyond its pods
	host     *HostStats   // nil for a simulated node
	resource http.Handler // the kubelet's /metrics/resource for this node; nil with FastResource

	mu      sync.Mutex
	ip      net.IP
	srv     *http.Server // its kubelet's server
	deleted bool         // DeleteNode removed it; AddNode brings it back
	mode    Mode
	delay   time.Duration
	skew    time.Duration
	flap    *flapState
	changed chan struct{}         // closed when the mode changes, to wake hanging requests
	conns   map[net.Conn]struct{} // open client connections, closed on a mode change
	pods    map[string]*pod
	hits    map[string]int
	// The latest samples, only CPU and memory and full, and their
	// instants (zero: none); reset when pods come or go.
	cached [2]cachedSummary
}

// addr returns the node's current address.
func (n *node) addr() net.IP {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ip
}

// pod is a pod running on a simulated node.
type pod struct {
	namespace, name, uid string
	node                 string
	start                time.Time // when its sandbox started, at nanosecond precision
	containers           []container
	running              bool // the API shows it Running
}

// container is a container of a pod: it started a little after its pod
// (cpu.start), and again at each restart.
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
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = defaultSampleInterval
	}
	f := &Fleet{cfg: cfg, byName: map[string]*node{}, pods: map[string]*pod{}, stats: newStatsHandler(), nextAddr: cfg.Nodes,
		processStart: strconv.FormatInt(time.Now().Unix(), 10)}
	if cfg.Authenticate {
		f.auth = newAuthCache(cfg.Client)
	}
	// Booted an hour ago, at some fraction of a second.
	boot := cfg.Clock.Now().Add(-time.Hour)
	for i := range cfg.Nodes {
		shape := cfg.NodeShape(i)
		n := f.newNode(cfg.NodeName(i), i, shape, boot.Add(-samplePhase(i)))
		n.mode = cfg.Modes[i]
		n.self = newCounter(n.start, usage{milliCPU: shape.SystemMilliCPU, memory: shape.SystemMemory})
	}
	if cfg.Host != nil {
		cores, memory, err := cfg.Host.Machine()
		if err != nil {
			return nil, err
		}
		n := f.newNode(cfg.Prefix+"-host", cfg.Nodes, NodeShape{Cores: int64(cores), Memory: int64(memory)}, boot)
		n.host = cfg.Host
		n.self = newCounter(n.start, usage{})
		f.nextAddr++
	}
	return f, nil
}

// newNode adds node name, the fleet's i-th, with its kubelet's handler.
func (f *Fleet) newNode(name string, i int, shape NodeShape, boot time.Time) *node {
	n := &node{
		name:    name,
		shape:   shape,
		start:   boot,
		phase:   samplePhase(i),
		every:   f.cfg.SampleInterval,
		clock:   f.cfg.Clock,
		ip:      f.cfg.NodeIP(i),
		changed: make(chan struct{}),
		pods:    map[string]*pod{},
		hits:    map[string]int{},
	}
	if !f.cfg.FastResource {
		n.resource = newResourceHandler(n)
	}
	f.nodes = append(f.nodes, n)
	f.byName[n.name] = n
	return n
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

// NodeShape returns a node's shape: its capacity and the usage it reports
// beyond its pods (none for the host node, whose usage is measured).
func (f *Fleet) NodeShape(nodeName string) (NodeShape, bool) {
	n, ok := f.byName[nodeName]
	if !ok {
		return NodeShape{}, false
	}
	return n.shape, true
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
	f.runCtx, f.stopped = ctx, ctx.Done()
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
