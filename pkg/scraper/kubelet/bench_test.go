package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http/httptest"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time (user and system) the test process has used:
// a scrape's cost on both ends, which its wall time on shared cores is not.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPayloads renders one node with pods x containers in both formats,
// shaped like a real kubelet's answers.
func benchPayloads(pods, containers int) (summary, resource []byte) {
	ts := requestTime.Format(time.RFC3339)
	ms := requestTime.UnixMilli()
	var s, r bytes.Buffer
	fmt.Fprintf(&s, `{"node":{"nodeName":"worker-1","startTime":"2026-11-20T08:00:00Z","cpu":{"time":%q,"usageNanoCores":612000000,"usageCoreNanoSeconds":123456789012345},"memory":{"time":%q,"availableBytes":5500000000,"usageBytes":3000000000,"workingSetBytes":2684354560,"rssBytes":2000000000,"pageFaults":5000,"majorPageFaults":12}},"pods":[`, ts, ts)
	for p := range pods {
		if p > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, `{"podRef":{"name":"app-%d-7d9f8c6b5-x2k4p","namespace":"team-%d","uid":"0f4c6a2e-1b7d-4c1e-9a53-0d2f6b1e%04d"},"startTime":"2026-11-23T12:00:00Z","containers":[`, p, p%7, p)
		for c := range containers {
			if c > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `{"name":"container-%d","startTime":"2026-11-23T12:00:04Z","cpu":{"time":%q,"usageNanoCores":25000000,"usageCoreNanoSeconds":%d},"memory":{"time":%q,"usageBytes":60000000,"workingSetBytes":%d,"rssBytes":40000000,"pageFaults":3000,"majorPageFaults":0},"swap":{"time":%q,"swapUsageBytes":0}}`,
				c, ts, 1987654321000+p*1000+c, ts, 52428800+p*4096, ts)
		}
		fmt.Fprintf(&s, `],"cpu":{"time":%q,"usageNanoCores":50000000,"usageCoreNanoSeconds":3975308642000},"memory":{"time":%q,"usageBytes":120000000,"workingSetBytes":104857600},"swap":{"time":%q,"swapUsageBytes":0}}`, ts, ts, ts)
	}
	s.WriteString("]}")

	series := []struct{ help, name string }{
		{"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n", "container_cpu_usage_seconds_total"},
		{"# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n", "container_memory_working_set_bytes"},
		{"# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n", "container_start_time_seconds"},
		{"# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems\n# TYPE container_swap_usage_bytes gauge\n", "container_swap_usage_bytes"},
	}
	for i, sr := range series {
		r.WriteString(sr.help)
		for p := range pods {
			for c := range containers {
				fmt.Fprintf(&r, "%s{container=\"container-%d\",namespace=\"team-%d\",pod=\"app-%d-7d9f8c6b5-x2k4p\"} ", sr.name, c, p%7, p)
				switch i {
				case 0:
					fmt.Fprintf(&r, "%g %d\n", 1987.654321+float64(p)/1e6, ms)
				case 1:
					fmt.Fprintf(&r, "%g %d\n", float64(52428800+p*4096), ms)
				case 2:
					r.WriteString("1.795435204e+09\n")
				case 3:
					// What a kubelet reports for a container that
					// swaps nothing (cAdvisor's 0), as in the summary.
					fmt.Fprintf(&r, "0 %d\n", ms)
				}
			}
		}
	}
	fmt.Fprintf(&r, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 123456.789012345 %d\n", ms)
	fmt.Fprintf(&r, "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes 2.68435456e+09 %d\n", ms)
	fmt.Fprintf(&r, "# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems\n# TYPE node_swap_usage_bytes gauge\nnode_swap_usage_bytes 0 %d\n", ms)
	// The pod series, which the decoder skips, as a kubelet writes them.
	for _, sr := range []struct{ help, name, value string }{
		{"# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter\n", "pod_cpu_usage_seconds_total", "3975.308642"},
		{"# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge\n", "pod_memory_working_set_bytes", "1.048576e+08"},
		{"# HELP pod_swap_usage_bytes [ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems\n# TYPE pod_swap_usage_bytes gauge\n", "pod_swap_usage_bytes", "0"},
	} {
		r.WriteString(sr.help)
		for p := range pods {
			fmt.Fprintf(&r, "%s{namespace=\"team-%d\",pod=\"app-%d-7d9f8c6b5-x2k4p\"} %s %d\n", sr.name, p%7, p, sr.value, ms)
		}
	}
	r.WriteString("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n")
	return s.Bytes(), r.Bytes()
}

func BenchmarkDecodeSummary(b *testing.B) {
	summary, _ := benchPayloads(30, 2)
	b.SetBytes(int64(len(summary)))
	b.ReportAllocs()
	for b.Loop() {
		batch, err := DecodeSummary(bytes.NewReader(summary), "worker-1", requestTime)
		if err != nil || len(batch.Pods) != 30 {
			b.Fatalf("decode: %v", err)
		}
	}
}

func BenchmarkDecodeResource(b *testing.B) { benchDecodeResource(b, false) }

// BenchmarkDecodeResourceRecycled decodes as the scraper does: each batch
// goes back to the client once stored.
func BenchmarkDecodeResourceRecycled(b *testing.B) { benchDecodeResource(b, true) }

func benchDecodeResource(b *testing.B, recycled bool) {
	_, resource := benchPayloads(30, 2)
	b.SetBytes(int64(len(resource)))
	b.ReportAllocs()
	for b.Loop() {
		batch, err := DecodeResource(bytes.NewReader(resource), "worker-1", requestTime)
		if err != nil || len(batch.Pods) != 30 {
			b.Fatalf("decode: %v", err)
		}
		if recycled {
			recycle(batch)
		}
	}
}

// TestBenchPayloadsDecodeAlike keeps the benchmark inputs honest: both
// describe the same node.
func TestBenchPayloadsDecodeAlike(t *testing.T) {
	s, r := benchPayloads(3, 2)
	sb, err := DecodeSummary(bytes.NewReader(s), "n", requestTime)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := DecodeResource(bytes.NewReader(r), "n", requestTime)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Pods) != 3 || len(rb.Pods) != 3 || sb.Pods[2].Containers[1].Memory != rb.Pods[2].Containers[1].Memory {
		t.Errorf("payloads disagree: %+v vs %+v", sb.Pods, rb.Pods)
	}
}

// BenchmarkGetMetrics is one scrape through the client (HTTPS, auth
// header, /metrics/resource of 30 pods x 2 containers, decoding) on a
// kept-alive connection, and on a new connection per scrape: the cost of
// not keeping a connection to every kubelet. Server and client share the
// process, so both sides' work is counted.
func BenchmarkGetMetrics(b *testing.B) {
	_, resource := benchPayloads(30, 2)
	for _, keepAlive := range []bool{true, false} {
		name := map[bool]string{true: "kept-alive", false: "new-connection"}[keepAlive]
		b.Run(name, func(b *testing.B) {
			k := &kubelet{}
			k.set(resourcePath, answer{200, string(resource), 0})
			srv := httptest.NewUnstartedServer(k)
			// A kubelet that closes each connection after answering.
			srv.Config.SetKeepAlivesEnabled(keepAlive)
			srv.StartTLS()
			defer srv.Close()
			c, _ := newTestClient(b, EndpointResource, nil)
			node := nodeFor(b, srv)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				batch, err := c.GetMetrics(context.Background(), node)
				if err != nil {
					b.Fatal(err)
				}
				c.Recycle(batch) // as the scraper does once the store has it
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if keepAlive {
				b.ReportMetric(float64(tlsInputBuffer(b, c)), "tls-buffer-B")
			}
		})
	}
}

// tlsInputBuffer is the capacity of the record buffer crypto/tls keeps in
// the client's kept connection: most of what a kept connection costs. It
// reads crypto/tls's unexported rawInput, so a Go release that renames it
// fails the benchmark here rather than reporting nonsense.
func tlsInputBuffer(b *testing.B, c *Client) int {
	c.conns.mu.Lock()
	defer c.conns.mu.Unlock()
	for _, cn := range c.conns.idle {
		tc, ok := cn.Conn.(*tls.Conn)
		if !ok {
			b.Fatalf("kept connection is a %T, not TLS", cn.Conn)
		}
		buf := reflect.ValueOf(tc).Elem().FieldByName("rawInput").FieldByName("buf")
		if !buf.IsValid() || buf.Kind() != reflect.Slice {
			b.Fatal("crypto/tls.Conn has no rawInput.buf slice in this Go release")
		}
		return buf.Cap()
	}
	b.Fatal("no kept connection")
	return 0
}

// BenchmarkHandshake is one full TLS handshake to a kubelet-like server
// with an ECDSA P-256 certificate (what a kubelet's rotated serving
// certificate is), both ends in the process: with Go's default key
// exchange (hybrid post-quantum X25519MLKEM768 first) and with X25519
// alone. The first cycle after a start pays one per node.
func BenchmarkHandshake(b *testing.B) {
	der, key := selfSigned(b, net.ParseIP("127.0.0.1"))
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _ = c.Close() }()
		}
	}()
	for _, tt := range []struct {
		name   string
		curves []tls.CurveID
	}{{"default", nil}, {"x25519-only", []tls.CurveID{tls.X25519}}} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", CurvePreferences: tt.curves}
			cpu0 := processCPU(b)
			for b.Loop() {
				c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
