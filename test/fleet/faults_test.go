package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// faultServer serves node n of f over plain HTTP and reports when each
// handler call returns.
func faultServer(t *testing.T, f *Fleet, n *node) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	returned := make(chan struct{}, 16)
	h := f.handler(n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, returned
}

// fetch GETs path within timeout and returns the status (0 on a client
// error) and how long it took.
func fetch(t *testing.T, base, path string, timeout time.Duration) (int, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

func TestHangNeverAnswers(t *testing.T) {
	f, n := testNode(t, 0, 1, 64<<20)
	srv, returned := faultServer(t, f, n)
	if err := f.SetMode(n.name, ModeHang); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/metrics/resource", "/stats/summary?only_cpu_and_memory=true"} {
		code, took, err := fetch(t, srv.URL, path, 300*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s on a hanging node: %d after %v (%v), want no answer before the client gives up", path, code, took, err)
		}
		// The client went away: the handler must return, not hold a
		// goroutine for ever.
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: handler still hanging 5s after the client closed", path)
		}
	}
	// A hanging request also ends when the mode changes.
	go func() { _, _, _ = fetch(t, srv.URL, "/metrics/resource", time.Minute) }()
	time.Sleep(200 * time.Millisecond)
	if err := f.SetMode(n.name, ModeNormal); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("hanging handler not woken by SetMode")
	}
	if code, _, err := fetch(t, srv.URL, "/metrics/resource", 5*time.Second); code != http.StatusOK {
		t.Fatalf("after the hang: %d %v", code, err)
	}
}

func TestDelayJustUnderAndOver(t *testing.T) {
	f, n := testNode(t, 0, 1, 64<<20)
	srv, _ := faultServer(t, f, n)
	const delay = 400 * time.Millisecond
	if err := f.SetDelay(n.name, delay); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		ok      bool
	}{
		{"timeout just over the delay", delay + 300*time.Millisecond, true},
		{"timeout just under the delay", delay - 200*time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, took, err := fetch(t, srv.URL, "/metrics/resource", tt.timeout)
			if tt.ok && (code != http.StatusOK || took < delay) {
				t.Errorf("%d after %v (%v), want 200 after at least %v", code, took, err, delay)
			}
			if !tt.ok && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%d after %v (%v), want the client's deadline", code, took, err)
			}
		})
	}
	if err := f.SetDelay(n.name, -time.Second); err == nil {
		t.Error("negative delay accepted")
	}
}

// TestFlapPhases drives the flap state with synthetic request times.
func TestFlapPhases(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		flap  Flap
		times []time.Duration // request times after t0
		want  []Mode
	}{
		{
			name:  "every other scrape, a fallback's second request in the same scrape",
			flap:  Flap{Fault: ModeError500},
			times: []time.Duration{0, 100 * time.Millisecond, 15 * time.Second, 30 * time.Second, 30*time.Second + 200*time.Millisecond, 45 * time.Second},
			want:  []Mode{ModeError500, ModeError500, ModeSummaryOnly, ModeError500, ModeError500, ModeSummaryOnly},
		},
		{
			name:  "two scrapes a phase",
			flap:  Flap{Fault: ModeHang, Scrapes: 2},
			times: []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 40 * time.Second},
			want:  []Mode{ModeHang, ModeHang, ModeSummaryOnly, ModeSummaryOnly, ModeHang},
		},
		{
			name:  "by wall time",
			flap:  Flap{Fault: ModeError500, Period: 20 * time.Second},
			times: []time.Duration{0, 500 * time.Millisecond, 19 * time.Second, 21 * time.Second, 39 * time.Second, 41 * time.Second},
			want:  []Mode{ModeError500, ModeError500, ModeError500, ModeSummaryOnly, ModeSummaryOnly, ModeError500},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &flapState{Flap: tt.flap, since: t0}
			for i, at := range tt.times {
				if got := s.mode(t0.Add(at), ModeSummaryOnly); got != tt.want[i] {
					t.Errorf("request at +%v: %q, want %q", at, got, tt.want[i])
				}
			}
		})
	}
}

// TestFlapServes checks SetFlap end to end: the first scrape fails, the
// next succeeds, and nil stops the flapping.
func TestFlapServes(t *testing.T) {
	f, n := testNode(t, 0, 1, 64<<20)
	srv, _ := faultServer(t, f, n)
	if err := f.SetFlap(n.name, &Flap{Period: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fetch(t, srv.URL, "/metrics/resource", 5*time.Second); code != http.StatusInternalServerError {
		t.Errorf("failing phase: %d, want 500 (the default fault)", code)
	}
	if err := f.SetFlap(n.name, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fetch(t, srv.URL, "/metrics/resource", 5*time.Second); code != http.StatusOK {
		t.Errorf("flapping stopped: %d, want 200", code)
	}
	if err := f.SetFlap(n.name, &Flap{Scrapes: -1}); err == nil {
		t.Error("negative flap accepted")
	}
}

// TestClockSkew checks that a skewed kubelet shifts every time it reports,
// in both formats, and nothing else.
func TestClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{5 * time.Minute, -5 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			f, n := testNode(t, 2, 2, 18<<30)
			if err := f.SetClockSkew(n.name, skew); err != nil {
				t.Fatal(err)
			}
			var sum statsapi.Summary
			if err := json.Unmarshal(get(t, f, n, "/stats/summary?only_cpu_and_memory=true"), &sum); err != nil {
				t.Fatal(err)
			}
			at := n.sampleTime(n.clock.Now())
			if got, want := sum.Node.CPU.Time.Time, at.Add(skew).Truncate(time.Second); !got.Equal(want) && !got.Equal(want.Add(n.every)) {
				t.Errorf("summary node time %v, want %v", got, want)
			}
			for _, p := range sum.Pods {
				sp := n.pods["ns/"+p.PodRef.Name]
				if want := sp.start.Add(skew).Truncate(time.Second); !p.StartTime.Time.Equal(want) {
					t.Errorf("pod %s start %v, want %v", p.PodRef.Name, p.StartTime, want)
				}
			}
			parser := expfmt.NewTextParser(model.LegacyValidation)
			mfs, err := parser.TextToMetricFamilies(bytes.NewReader(get(t, f, n, "/metrics/resource")))
			if err != nil {
				t.Fatal(err)
			}
			ts := mfs["node_memory_working_set_bytes"].Metric[0].GetTimestampMs()
			if want := at.Add(skew).UnixMilli(); ts != want && ts != want+n.every.Milliseconds() {
				t.Errorf("resource node timestamp %d, want %d", ts, want)
			}
			for _, m := range mfs["container_start_time_seconds"].Metric {
				got := time.Unix(0, int64(m.GetGauge().GetValue()*1e9))
				if d := got.Sub(n.pods["ns/p00"].containers[0].cpu.start.Add(skew)); d > time.Second || d < -time.Second {
					t.Errorf("container start %v is %v off the skewed start", got, d)
				}
			}
		})
	}
}
