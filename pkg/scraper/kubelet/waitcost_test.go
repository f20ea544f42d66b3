package kubelet

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubemetrics/metrics-server/pkg/scraper/gate"
)

// TestWaitingRequestCost measures what a request costs while it waits for
// a kubelet's answer on a kept connection (the scraper starts every
// node's request at its phase, so at 5,000 nodes answering in 6s about
// that many wait at once): heap and goroutine stack, per request, over
// 400 requests to kubelets that answer after their connections were made.
// It bounds that cost at 24 KiB a request (about 8 KiB measured, 14 KiB
// with the race detector), so a change that makes waiting
// expensive (a buffer per request, a goroutine more) shows.
func TestWaitingRequestCost(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 400 TLS connections")
	}
	const n = 400
	summary := readTestdata(t, "summary-pods.json")
	answer := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(summary), summary))
	// A bare kubelet: a goroutine and a reader per connection, the same
	// before and while requests wait, so the difference is the client's.
	tmpl := httptest.NewUnstartedServer(nil)
	tmpl.StartTLS()
	defer tmpl.Close()
	var (
		mu   sync.Mutex
		warm = true
	)
	release := make(chan struct{})
	arrived := make(chan struct{}, n)
	serve := func(conn net.Conn) {
		defer conn.Close()
		br := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_ = req.Body.Close()
			mu.Lock()
			w := warm
			mu.Unlock()
			if !w {
				arrived <- struct{}{}
				<-release
			}
			if _, err := conn.Write(answer); err != nil {
				return
			}
		}
	}
	// One kubelet address per node, as the client keeps one connection
	// per address.
	nodes := make([]*corev1.Node, n)
	for i := range nodes {
		ln, err := tls.Listen("tcp", fmt.Sprintf("127.0.%d.%d:0", 1+i/250, 1+i%250), tmpl.TLS)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go serve(conn)
			}
		}()
		nodes[i] = nodeFor(t, &httptest.Server{Listener: ln})
		nodes[i].Name = fmt.Sprintf("worker-%d", i)
	}
	c, _ := newTestClient(t, EndpointSummary, func(c *Config) { c.RequestTimeout = time.Minute })
	ctx := gate.With(context.Background(), gate.New(64))
	run := func() {
		var wg sync.WaitGroup
		for _, node := range nodes {
			wg.Go(func() {
				if _, err := c.GetMetrics(ctx, node); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	run()
	mu.Lock()
	warm = false
	mu.Unlock()

	before := memInUse()
	done := make(chan struct{})
	go func() { run(); close(done) }()
	for range n {
		select {
		case <-arrived:
		case <-time.After(30 * time.Second):
			t.Fatal("not every request reached the kubelet in 30s")
		}
	}
	waiting := memInUse()
	close(release)
	<-done
	per := (int64(waiting) - int64(before)) / n
	t.Logf("%d requests waiting for their answers: %d KiB of heap and stacks in use more than before, %d bytes a request", n, (int64(waiting)-int64(before))>>10, per)
	if per > 24<<10 {
		t.Errorf("a waiting request costs %d bytes, want at most 24 KiB", per)
	}
}

// memInUse is the heap and goroutine stacks in use after a collection.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
