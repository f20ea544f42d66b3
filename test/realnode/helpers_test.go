//go:build realnode

package realnode

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// waitPodsRunning waits until each named pod of ns is Running.
func waitPodsRunning(ctx context.Context, ns string, names ...string) error {
	for _, name := range names {
		if err := poll(ctx, "pod "+ns+"/"+name+" Running", time.Second, 2*time.Minute, func() error {
			out, err := kubectl(ctx, "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}")
			if err != nil {
				return err
			}
			if out != "Running" {
				return fmt.Errorf("phase %q", out)
			}
			return nil
		}); err != nil {
			desc, _ := kubectl(ctx, "describe", "pod", name, "-n", ns)
			return fmt.Errorf("%w\n%s", err, desc)
		}
	}
	return nil
}

// top is one line of kubectl top: CPU in millicores, memory in MiB.
type top struct {
	milli, mib int
}

// kubectlTop runs `kubectl top <kind> name` (kind pod with -n ns, or node)
// until it answers, and reads its CPU and memory.
func kubectlTop(ctx context.Context, kind, ns, name string, limit time.Duration) (top, error) {
	args := []string{"top", kind, name, "--no-headers"}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	var line string
	err := poll(ctx, "kubectl "+strings.Join(args, " "), time.Second, limit, func() error {
		out, err := kubectl(ctx, args...)
		if err != nil {
			return err
		}
		line = strings.TrimSpace(out)
		return nil
	})
	if err != nil {
		return top{}, err
	}
	// A pod: NAME CPU MEMORY; a node: NAME CPU CPU% MEMORY MEMORY%.
	f := strings.Fields(line)
	memCol := 2
	if kind == "node" {
		memCol = 3
	}
	if len(f) <= memCol || f[0] != name || !strings.HasSuffix(f[1], "m") || !strings.HasSuffix(f[memCol], "Mi") {
		return top{}, fmt.Errorf("kubectl %s printed %q, want NAME CPU(m) MEMORY(Mi)", strings.Join(args, " "), line)
	}
	milli, err1 := strconv.Atoi(strings.TrimSuffix(f[1], "m"))
	mib, err2 := strconv.Atoi(strings.TrimSuffix(f[memCol], "Mi"))
	if err1 != nil || err2 != nil {
		return top{}, fmt.Errorf("kubectl %s printed %q: cannot read CPU and memory", strings.Join(args, " "), line)
	}
	return top{milli, mib}, nil
}

// within says whether got is within frac of want.
func within(got, want, frac float64) bool {
	return got >= want*(1-frac) && got <= want*(1+frac)
}

// metricsUsage is the part of NodeMetrics and PodMetrics the tests read.
type metricsUsage struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Timestamp  time.Time `json:"timestamp"`
	Window     string    `json:"window"`
	Usage      map[string]resource.Quantity
	Containers []struct {
		Name  string                       `json:"name"`
		Usage map[string]resource.Quantity `json:"usage"`
	} `json:"containers"`
}

// getMetrics reads one object (or a list's items) of the metrics API
// through the kube-apiserver.
func getMetrics(ctx context.Context, path string) ([]metricsUsage, error) {
	out, err := kubectl(ctx, "get", "--raw", path)
	if err != nil {
		return nil, err
	}
	var list struct {
		Kind  string         `json:"kind"`
		Items []metricsUsage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if strings.HasSuffix(list.Kind, "List") {
		return list.Items, nil
	}
	var one metricsUsage
	if err := json.Unmarshal([]byte(out), &one); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []metricsUsage{one}, nil
}

// verifyServing dials addr and verifies its serving certificate against
// the PEM caBundle for serverName, as the aggregator does.
func verifyServing(addr, serverName string, caBundle []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caBundle) {
		return nil, fmt.Errorf("the caBundle holds no PEM certificate")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// apiServiceCABundle is the decoded caBundle of an APIService.
func apiServiceCABundle(ctx context.Context, name string) ([]byte, error) {
	out, err := kubectl(ctx, "get", "apiservice", name, "-o", "jsonpath={.spec.caBundle}")
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(strings.TrimSpace(out))
}

// cgroupSample is the root cgroup's counters at one time: what the kubelet
// (cAdvisor's "/" container) reads for the node.
type cgroupSample struct {
	at         time.Time
	cpuNanos   uint64
	workingSet uint64
}

// cgroupSampler reads the root cgroup every 250ms until stopped.
type cgroupSampler struct {
	mu      sync.Mutex
	samples []cgroupSample
	stop    chan struct{}
	done    chan struct{}
}

// The cgroup v1 files of the root cgroup (this machine's hierarchy; some
// mount cpuacct on its own, others join it with cpu).
const (
	memUsage = "/sys/fs/cgroup/memory/memory.usage_in_bytes"
	memStat  = "/sys/fs/cgroup/memory/memory.stat"
)

var cpuacctUsages = []string{"/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"}

func startCgroupSampler() (*cgroupSampler, error) {
	if _, err := readCgroup(); err != nil {
		return nil, err
	}
	s := &cgroupSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		// Bounded: at most 40 minutes of samples.
		for i := 0; i < 4*60*40; i++ {
			if c, err := readCgroup(); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, c)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s, nil
}

func (s *cgroupSampler) Stop() { close(s.stop); <-s.done }

func readCgroup() (cgroupSample, error) {
	at := time.Now()
	var cpu uint64
	var err error
	for _, p := range cpuacctUsages {
		if cpu, err = readUint(p); err == nil {
			break
		}
	}
	if err != nil {
		return cgroupSample{}, err
	}
	usage, err := readUint(memUsage)
	if err != nil {
		return cgroupSample{}, err
	}
	f, err := os.Open(memStat)
	if err != nil {
		return cgroupSample{}, err
	}
	defer f.Close()
	var inactive uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "total_inactive_file "); ok {
			inactive, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	ws := uint64(0)
	if usage > inactive {
		ws = usage - inactive
	}
	return cgroupSample{at: at, cpuNanos: cpu, workingSet: ws}, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// at interpolates the CPU counter at t between the samples around it, and
// returns the working set of the sample nearest t.
func (s *cgroupSampler) at(t time.Time) (cpuNanos float64, workingSet uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i < len(s.samples); i++ {
		a, b := s.samples[i-1], s.samples[i]
		if t.Before(a.at) || t.After(b.at) {
			continue
		}
		f := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
		ws := a.workingSet
		if f > 0.5 {
			ws = b.workingSet
		}
		return float64(a.cpuNanos) + f*float64(b.cpuNanos-a.cpuNanos), ws, nil
	}
	if len(s.samples) == 0 {
		return 0, 0, fmt.Errorf("no cgroup samples")
	}
	return 0, 0, fmt.Errorf("%s is outside the cgroup samples (%s to %s)", t.Format(time.RFC3339Nano),
		s.samples[0].at.Format(time.RFC3339Nano), s.samples[len(s.samples)-1].at.Format(time.RFC3339Nano))
}
