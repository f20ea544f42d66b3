package fleet

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Mode is how a simulated kubelet answers its metrics endpoints.
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
	// ModeSlow answers after 30s (SetDelay sets any other delay).
	ModeSlow Mode = "slow"
	// ModeHang accepts the request and never answers: the handler returns
	// only when the client closes the connection, the node's mode changes
	// or the fleet stops. A kubelet stuck on a dead disk or runtime.
	ModeHang Mode = "hang"
	// ModeGarbage answers 200 with a body that is not metrics.
	ModeGarbage Mode = "garbage"
	// ModeWrongTLSName serves a certificate for another name.
	ModeWrongTLSName Mode = "wrong-tls-name"
)

// Flap makes a node alternate between failing and answering as its mode
// says, starting with a failing phase.
type Flap struct {
	// Fault is how the node answers while failing; ModeError500 if empty.
	// Any mode but ModeWrongTLSName, which acts at the handshake, before
	// a request says which scrape it belongs to.
	Fault Mode
	// Scrapes is how many scrapes each phase lasts (default 1: every
	// other scrape fails). A scrape is the node's metrics requests that
	// arrive less than flapBurst apart, so a fallback's second request
	// belongs to the scrape of the first.
	Scrapes int
	// Period, when set, makes each phase last this long in wall time,
	// counted from SetFlap, instead of counting scrapes.
	Period time.Duration
}

// flapBurst separates one scrape's requests from the next scrape's.
const flapBurst = time.Second

// flapState is a Flap in progress; the node's lock guards it.
type flapState struct {
	Flap
	since   time.Time
	scrapes int       // scrapes seen, the current one included
	last    time.Time // the latest metrics request
}

// mode returns the mode a request arriving at now meets.
func (s *flapState) mode(now time.Time, steady Mode) Mode {
	var phase int
	if s.Period > 0 {
		phase = int(now.Sub(s.since) / s.Period)
	} else {
		if s.last.IsZero() || now.Sub(s.last) >= flapBurst {
			s.scrapes++
		}
		s.last = now
		phase = (s.scrapes - 1) / max(s.Scrapes, 1)
	}
	if phase%2 == 0 {
		return s.Fault
	}
	return steady
}

// SetMode changes how a node's kubelet answers; open connections are
// closed, so the next scrape meets the new mode from its handshake on.
func (f *Fleet) SetMode(nodeName string, m Mode) error {
	return f.change(nodeName, true, func(n *node) { n.mode = m })
}

// SetDelay makes a node answer every metrics request d after it arrives
// (0: at once), on top of its mode: set d just under or just over a
// scraper's timeout. The delay ends early when the client gives up.
func (f *Fleet) SetDelay(nodeName string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("node %s: delay %v is negative", nodeName, d)
	}
	return f.change(nodeName, false, func(n *node) { n.delay = d })
}

// SetFlap makes a node alternate between failing and answering (nil
// stops it). See Flap.
func (f *Fleet) SetFlap(nodeName string, fl *Flap) error {
	if fl != nil && (fl.Scrapes < 0 || fl.Period < 0) {
		return fmt.Errorf("node %s: flap %+v has a negative length", nodeName, *fl)
	}
	return f.change(nodeName, false, func(n *node) {
		n.flap = nil
		if fl != nil {
			s := &flapState{Flap: *fl, since: time.Now()}
			if s.Fault == ModeNormal {
				s.Fault = ModeError500
			}
			n.flap = s
		}
	})
}

// SetClockSkew sets how far a node's clock is ahead (negative: behind):
// every time its kubelet reports (sample times, container, pod and node
// start times) is shifted by skew, in both formats. Say ±5m for a node
// whose NTP has failed.
func (f *Fleet) SetClockSkew(nodeName string, skew time.Duration) error {
	return f.change(nodeName, false, func(n *node) { n.skew, n.cached = skew, [2]cachedSummary{} })
}

// change applies fn to a node under its lock; with dropConns it then
// closes the node's open connections (HTTP/2 ones included) and wakes its
// hanging requests.
func (f *Fleet) change(nodeName string, dropConns bool, fn func(*node)) error {
	n, ok := f.byName[nodeName]
	if !ok {
		return fmt.Errorf("no node %s in the fleet", nodeName)
	}
	n.mu.Lock()
	fn(n)
	var conns map[net.Conn]struct{}
	if dropConns {
		conns = n.conns
		n.conns = map[net.Conn]struct{}{}
		close(n.changed)
		n.changed = make(chan struct{})
	}
	n.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	return nil
}

// fault answers r as the node's fault settings say and reports whether it
// did; false means the kubelet's own handler answers. sub is "stats" or
// "metrics".
func (f *Fleet) fault(w http.ResponseWriter, r *http.Request, n *node, sub string) bool {
	now := time.Now()
	n.mu.Lock()
	mode, delay, changed := n.mode, n.delay, n.changed
	if n.flap != nil {
		mode = n.flap.mode(now, mode)
	}
	n.mu.Unlock()
	if mode == ModeSlow {
		delay = max(delay, 30*time.Second)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-f.stopped:
			return true
		}
	}
	switch {
	case mode == ModeHang:
		select {
		case <-r.Context().Done():
		case <-changed:
		case <-f.stopped:
		}
		return true
	case mode == ModeError500, mode == ModeSummary500 && sub == "stats":
		http.Error(w, `Internal Error: failed to get imageFs stats: "unable to find data in memory cache"`, http.StatusInternalServerError)
		return true
	case mode == ModeResource500 && sub == "metrics":
		http.Error(w, "simulated internal error", http.StatusInternalServerError)
		return true
	case mode == ModeSummaryOnly && sub == "metrics", mode == ModeResourceOnly && sub == "stats":
		http.NotFound(w, r)
		return true
	case mode == ModeGarbage:
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>\x00\xff"))
		return true
	}
	return false
}
