package e2einstall

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// loadWorkers read the metrics API through the kube-apiserver at once, each
// alternating the HPA's read (v1beta1 pods of a namespace) and kubectl's
// (v1 nodes) with a 20 ms pause.
const loadWorkers = 2

// counts are what a load saw. Failures keep their first messages.
type counts struct {
	typedOK, typedFailed int // API reads
	topOK, topFailed     int // kubectl top runs
	// hpaEpisodes counts the times HPA polls (1 s) started seeing
	// ScalingActive other than True; hpaLongest is the longest such time.
	hpaEpisodes int
	hpaLongest  time.Duration
	unavailable int // APIService polls (1 s) not Available
	errs        []string
}

func (c counts) failed() int {
	return c.typedFailed + c.topFailed + c.hpaEpisodes + c.unavailable
}

func (c counts) sub(o counts) counts {
	return counts{typedOK: c.typedOK - o.typedOK, typedFailed: c.typedFailed - o.typedFailed,
		topOK: c.topOK - o.topOK, topFailed: c.topFailed - o.topFailed,
		hpaEpisodes: c.hpaEpisodes - o.hpaEpisodes, hpaLongest: c.hpaLongest, unavailable: c.unavailable - o.unavailable,
		errs: c.errs[min(len(o.errs), len(c.errs)):]}
}

func (c counts) String() string {
	return fmt.Sprintf("API reads %d ok %d failed; kubectl top %d ok %d failed; HPA not ScalingActive %d times, longest %v; APIService unavailable %d",
		c.typedOK, c.typedFailed, c.topOK, c.topFailed, c.hpaEpisodes, c.hpaLongest, c.unavailable)
}

func (c counts) examples() string { return strings.Join(c.errs, "; ") }

// load reads the API until stopped.
type load struct {
	mu     sync.Mutex
	c      counts
	began  time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// inactiveSince is when the HPA was first seen not ScalingActive in
	// the current episode; zero when it is active. Guarded by mu.
	inactiveSince time.Time
}

// hpaSeen records one poll of the HPA's ScalingActive condition.
func (l *load) hpaSeen(active bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch {
	case !active && l.inactiveSince.IsZero():
		l.inactiveSince = now
		l.c.hpaEpisodes++
		if len(l.c.errs) < 20 {
			l.c.errs = append(l.c.errs, fmt.Sprintf("at %v: %v", now.Sub(l.began).Round(time.Millisecond), err))
		}
	case active && !l.inactiveSince.IsZero():
		l.c.hpaLongest = max(l.c.hpaLongest, now.Sub(l.inactiveSince))
		l.inactiveSince = time.Time{}
	}
}

func (l *load) note(f func(*counts), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.c)
	if err != nil && len(l.c.errs) < 20 {
		l.c.errs = append(l.c.errs, fmt.Sprintf("at %v: %v", time.Since(l.began).Round(time.Millisecond), err))
	}
}

func (l *load) snapshot() counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.c
	c.errs = append([]string(nil), l.c.errs...)
	return c
}

// stop ends the load and returns what it saw since since. An HPA episode
// still open counts until now.
func (l *load) stop(since counts) counts {
	l.cancel()
	l.wg.Wait()
	l.hpaSeen(true, nil)
	return l.snapshot().sub(since)
}

// startLoad starts loadWorkers API readers, a kubectl top loop and a poll
// of the HPA in hpaNS and of the APIServices. Each loop ends with the load.
func startLoad(ctx context.Context, t *testing.T, hpaNS string, apiServices []string) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	l := &load{began: time.Now(), cancel: cancel}
	t.Cleanup(func() { l.stop(counts{}) })
	rest := e.client.CoreV1().RESTClient()
	paths := []string{"/apis/metrics.k8s.io/v1beta1/namespaces/" + appNamespace + "/pods", "/apis/metrics.k8s.io/v1/nodes"}
	loop := func(every time.Duration, f func(context.Context)) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				f(ctx)
				select {
				case <-ctx.Done():
				case <-time.After(every):
				}
			}
		}()
	}
	for w := range loadWorkers {
		i := w
		loop(20*time.Millisecond, func(ctx context.Context) {
			p := paths[i%len(paths)]
			i++
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			_, err := rest.Get().AbsPath(p).Do(rctx).Raw()
			if ctx.Err() != nil {
				return // ended by stop, not failed
			}
			if err != nil {
				l.note(func(c *counts) { c.typedFailed++ }, fmt.Errorf("GET %s: %w", p, err))
				return
			}
			l.note(func(c *counts) { c.typedOK++ }, nil)
		})
	}
	top := 0
	loop(100*time.Millisecond, func(ctx context.Context) {
		args := []string{"top", "node", "--no-headers"}
		if top++; top%2 == 0 {
			args = []string{"top", "pod", "-n", appNamespace, "--no-headers"}
		}
		_, err := e.cluster.Kubectl(ctx, args...)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.note(func(c *counts) { c.topFailed++ }, fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err))
			return
		}
		l.note(func(c *counts) { c.topOK++ }, nil)
	})
	loop(time.Second, func(ctx context.Context) {
		h, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(hpaNS).Get(ctx, haApp, metav1.GetOptions{})
		if ctx.Err() == nil {
			active := err == nil && scalingActive(h)
			if err == nil && !active {
				err = fmt.Errorf("HPA conditions %+v", h.Status.Conditions)
			}
			l.hpaSeen(active, err)
		}
		for _, name := range apiServices {
			raw, err := rest.Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/"+name).SetHeader("Accept", "application/json").Do(ctx).Raw()
			if ctx.Err() != nil {
				return
			}
			var a apiService
			if err == nil {
				err = json.Unmarshal(raw, &a)
			}
			if err == nil && !available(a) {
				err = fmt.Errorf("APIService %s not available: %+v", name, a.Status.Conditions)
			}
			if err != nil {
				l.note(func(c *counts) { c.unavailable++ }, err)
			}
		}
	})
	return l
}

func available(a apiService) bool {
	for _, c := range a.Status.Conditions {
		if c.Type == "Available" {
			return c.Status == "True"
		}
	}
	return false
}

// replicaPID finds the process of r by its --kubeconfig argument, which
// names the replica's own folder.
func replicaPID(t *testing.T, r *localcluster.Replica) int {
	t.Helper()
	var want string
	for _, a := range r.Args {
		if strings.HasPrefix(a, "--kubeconfig=") {
			want = a
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(b, []byte{0}) {
			if want != "" && string(a) == want {
				pid, _ := strconv.Atoi(filepath.Base(d))
				return pid
			}
		}
	}
	t.Fatalf("no process of %s (%s)", r.Name, want)
	return 0
}

// tcpConn is one line of /proc/net/tcp.
type tcpConn struct {
	localPort, remotePort int
	established           bool
	inode                 string
}

func tcpConns(t *testing.T) []tcpConn {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var out []tcpConn
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		port := func(addr string) int {
			_, hex, _ := strings.Cut(addr, ":")
			n, _ := strconv.ParseInt(hex, 16, 32)
			return int(n)
		}
		out = append(out, tcpConn{localPort: port(f[1]), remotePort: port(f[2]), established: f[3] == "01", inode: f[9]})
	}
	return out
}

// socketsOf returns the socket inodes pid holds.
func socketsOf(t *testing.T, pid int) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			out[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return out
}

// establishedOn counts pid's established connections on its port: the
// kube-apiserver's, as nothing else calls a replica here.
func establishedOn(t *testing.T, pid, port int) int {
	t.Helper()
	mine, n := socketsOf(t, pid), 0
	for _, c := range tcpConns(t) {
		if c.established && c.localPort == port && mine[c.inode] {
			n++
		}
	}
	return n
}

// holdConnections opens TLS connections to port (up to 32) until every
// process in pids has accepted one, and returns how many each accepted and
// how many different serving certificates the connections were shown.
func holdConnections(t *testing.T, port int, pids map[*localcluster.Replica]int) (map[*localcluster.Replica]int, int) {
	t.Helper()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	got := map[*localcluster.Replica]int{}
	certs := map[string]bool{}
	for i := 0; i < 32; i++ {
		// Only counting who accepts: no credentials are sent.
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec
		if err != nil {
			t.Fatalf("connecting to the shared port %d: %v", port, err)
		}
		held = append(held, c)
		certs[string(c.ConnectionState().PeerCertificates[0].Raw)] = true
		ours := map[int]bool{}
		for _, h := range held {
			ours[h.LocalAddr().(*net.TCPAddr).Port] = true
		}
		conns := tcpConns(t)
		all := true
		for r, pid := range pids {
			mine, n := socketsOf(t, pid), 0
			for _, tc := range conns {
				if tc.localPort == port && ours[tc.remotePort] && mine[tc.inode] {
					n++
				}
			}
			got[r] = n
			all = all && n > 0
		}
		if all {
			return got, len(certs)
		}
	}
	t.Fatalf("32 connections to port %d and not every replica accepted one: %v", port, got)
	return nil, 0
}
