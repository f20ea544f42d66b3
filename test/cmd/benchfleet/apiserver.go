package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The kube-apiserver's side of a run: how much CPU it spends while a server
// runs and which requests make it. Three sources, each read before and after
// the steady window:
//   - /proc/<pid>/stat of the kube-apiserver (its pid from the cluster's
//     pids folder): CPU seconds;
//   - its /metrics: apiserver_request_total (every request it served, by
//     verb, group, version, resource, subresource and code),
//     apiserver_watch_events_total (what its watches sent) and the
//     aggregator's counters (OpenAPI and discovery aggregation);
//   - its audit log (Metadata level): the same requests by user and user
//     agent, so a request can be pinned on the server, the fleet or the
//     kube-apiserver itself;
//   - the audit log of the server under test: what the aggregator asked of
//     it (discovery, OpenAPI v2 and v3, availability checks) and what it
//     proxied.

// auditPolicy logs every request once, when it is answered, without
// bodies. Watches are logged when they end (ResponseComplete) with the
// time they began.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
`

// writeAuditPolicy writes auditPolicy into dir and returns its path.
func writeAuditPolicy(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "audit-policy.yaml")
	return p, os.WriteFile(p, []byte(auditPolicy), 0o644)
}

// apiserverPID reads the kube-apiserver's pid from the cluster folder's
// pids/kube-apiserver (localcluster's process bookkeeping).
func apiserverPID(clusterDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(clusterDir, "pids", "kube-apiserver"))
	if err != nil {
		return 0, fmt.Errorf("the kube-apiserver's pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("the kube-apiserver's pid file holds %q", b)
	}
	return pid, nil
}

// RequestCount is one kind of request and how many there were a minute.
// The fields not known to a source are empty.
type RequestCount struct {
	// User and UserAgent come from audit logs; UserAgent is its product
	// token (before the first space).
	User      string `json:",omitempty"`
	UserAgent string `json:",omitempty"`
	Verb      string
	// Resource is group/version/resource/subresource for resource
	// requests ("core" for the legacy group), or the path of a
	// non-resource request.
	Resource string
	Code     string
	PerMin   float64
}

// key is a RequestCount without its count, for lookups and sorting.
func (r RequestCount) key() string {
	return strings.Join([]string{r.User, r.UserAgent, r.Verb, r.Resource, r.Code}, "\x00")
}

// APIServerLoad is the kube-apiserver's work in one steady window.
type APIServerLoad struct {
	// CPUSecondsPerMinute is the kube-apiserver's utime+stime.
	CPUSecondsPerMinute float64
	// Requests is the diff of apiserver_request_total, a minute.
	Requests []RequestCount
	// Audit is the kube-apiserver's audit log over the window: requests
	// received in it, by user and agent, a minute.
	Audit []RequestCount
	// ServerAudit is the server under test's audit log over the window:
	// what it was asked (by the aggregator, or proxied), a minute.
	ServerAudit []RequestCount
	// AllocMiBPerMinute is what the kube-apiserver allocated
	// (go_memstats_alloc_bytes_total), GCPerMinute how many collections
	// it ran (go_gc_duration_seconds_count).
	AllocMiBPerMinute, GCPerMinute float64
	// Counters are the other counters that moved, a minute: watch events
	// sent by kind, the aggregator's OpenAPI and discovery work.
	Counters map[string]float64 `json:",omitempty"`
}

// apiserverProbe takes the snapshots.
type apiserverProbe struct {
	pid       int
	url       string
	client    *http.Client
	auditLog  string // the kube-apiserver's; "" when not audited
	serverLog string // the server under test's; "" when not audited
}

type apiserverSnapshot struct {
	at       time.Time
	cpuTicks uint64
	counters map[string]float64 // series key -> value
}

func newAPIServerProbe(clusterDir, adminKubeconfig, auditLog string) (*apiserverProbe, error) {
	pid, err := apiserverPID(clusterDir)
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = time.Minute
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &apiserverProbe{pid: pid, url: cfg.Host, client: hc, auditLog: auditLog}, nil
}

// begin and end take the snapshots at the edges of a window: the
// kube-apiserver's answer to /metrics (a few MB) is left outside it.
func (p *apiserverProbe) begin(ctx context.Context) (apiserverSnapshot, error) {
	var s apiserverSnapshot
	var err error
	if s.counters, err = p.scrape(ctx); err != nil {
		return s, err
	}
	s.at = time.Now()
	if s.cpuTicks, err = cpuTicks(p.pid); err != nil {
		return s, fmt.Errorf("kube-apiserver: %w", err)
	}
	return s, nil
}

func (p *apiserverProbe) end(ctx context.Context) (apiserverSnapshot, error) {
	s := apiserverSnapshot{at: time.Now()}
	var err error
	if s.cpuTicks, err = cpuTicks(p.pid); err != nil {
		return s, fmt.Errorf("kube-apiserver: %w", err)
	}
	s.counters, err = p.scrape(ctx)
	return s, err
}

// scrape reads the counted families of the kube-apiserver's /metrics.
func (p *apiserverProbe) scrape(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kube-apiserver /metrics: %s", resp.Status)
	}
	return parseCounters(io.LimitReader(resp.Body, 256<<20))
}

// load compares two snapshots and reads the audit logs between them.
func (p *apiserverProbe) load(a, b apiserverSnapshot) (APIServerLoad, error) {
	mins := b.at.Sub(a.at).Minutes()
	l := APIServerLoad{CPUSecondsPerMinute: float64(b.cpuTicks-a.cpuTicks) / clockTicks / mins, Counters: map[string]float64{}}
	for k, v := range b.counters {
		d := v - a.counters[k]
		if d <= 0 {
			continue
		}
		switch k {
		case allocBytes + "{}":
			l.AllocMiBPerMinute = d / (1 << 20) / mins
			continue
		case gcPauses + "_count{}":
			l.GCPerMinute = d / mins
			continue
		}
		if rc, ok := requestOfSeries(k); ok {
			rc.PerMin = d / mins
			l.Requests = append(l.Requests, rc)
			continue
		}
		l.Counters[k] = d / mins
	}
	l.Requests = mergeCounts(l.Requests)
	var err error
	if p.auditLog != "" {
		if l.Audit, err = readAudit(p.auditLog, a.at, b.at); err != nil {
			return l, err
		}
	}
	if p.serverLog != "" {
		if l.ServerAudit, err = readAudit(p.serverLog, a.at, b.at); err != nil {
			return l, err
		}
	}
	return l, nil
}

// allocBytes and gcPauses count what the kube-apiserver's Go runtime
// allocated and how many collections it ran: its CPU in steady state is
// mostly the collector marking a heap that holds every object, and each
// collection is paid for by allocation, so bytes allocated are a measure
// of work that, unlike CPU seconds, other processes on the machine do not
// inflate.
const (
	allocBytes = "go_memstats_alloc_bytes_total"
	gcPauses   = "go_gc_duration_seconds"
)

// countedFamilies are the counters kept from the kube-apiserver's
// /metrics; histograms count their observations (_count).
func countedFamily(name string) bool {
	return name == "apiserver_request_total" || name == "apiserver_watch_events_total" ||
		name == allocBytes || name == gcPauses ||
		// reads of the storage and the watch cache: a relist from etcd
		// shows here, not in apiserver_request_total
		name == "etcd_requests_total" || strings.HasPrefix(name, "apiserver_storage_list_") ||
		name == "apiserver_cache_list_total" || name == "apiserver_watch_cache_initializations_total" ||
		strings.HasPrefix(name, "aggregator_") || strings.HasPrefix(name, "apiserver_aggregated_")
}

// parseCounters reads the counters of countedFamily from a Prometheus text
// exposition, keyed name{label="value",...} with labels sorted.
func parseCounters(r io.Reader) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !countedFamily(name) {
			continue
		}
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[seriesKey(name, m.GetLabel())] += m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[seriesKey(name+"_count", m.GetLabel())] += float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_SUMMARY:
				out[seriesKey(name+"_count", m.GetLabel())] += float64(m.GetSummary().GetSampleCount())
			case dto.MetricType_UNTYPED:
				out[seriesKey(name, m.GetLabel())] += m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

func seriesKey(name string, labels []*dto.LabelPair) string {
	var kv []string
	for _, l := range labels {
		kv = append(kv, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// requestOfSeries turns an apiserver_request_total series key into a
// RequestCount (without its count).
func requestOfSeries(key string) (RequestCount, bool) {
	rest, ok := strings.CutPrefix(key, "apiserver_request_total{")
	if !ok {
		return RequestCount{}, false
	}
	labels := map[string]string{}
	for _, kv := range splitLabels(strings.TrimSuffix(rest, "}")) {
		k, v, _ := strings.Cut(kv, "=")
		if u, err := strconv.Unquote(v); err == nil {
			labels[k] = u
		}
	}
	return RequestCount{Verb: labels["verb"], Resource: resourcePath(labels["group"], labels["version"], labels["resource"], labels["subresource"]), Code: labels["code"]}, true
}

// splitLabels splits k="v",k="v" at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i, c := range s {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func resourcePath(group, version, resource, subresource string) string {
	if group == "" {
		group = "core"
	}
	p := group + "/" + version + "/" + resource
	if subresource != "" {
		p += "/" + subresource
	}
	return p
}

// auditEvent is what readAudit reads of an audit.k8s.io/v1 Event.
type auditEvent struct {
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		APIGroup    string `json:"apiGroup"`
		APIVersion  string `json:"apiVersion"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// readAudit counts the requests of an audit log received in [from, to),
// a minute, by user, user agent, verb, resource (or path) and code. Lines
// that are not events (a log cut mid-write) are skipped.
func readAudit(path string, from, to time.Time) ([]RequestCount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mins := to.Sub(from).Minutes()
	counts := map[string]*RequestCount{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var e auditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Stage == "" {
			continue
		}
		if e.RequestReceivedTimestamp.Before(from) || !e.RequestReceivedTimestamp.Before(to) {
			continue
		}
		rc := RequestCount{User: e.User.Username, UserAgent: agentProduct(e.UserAgent), Verb: e.Verb}
		if e.ObjectRef != nil && e.ObjectRef.Resource != "" {
			rc.Resource = resourcePath(e.ObjectRef.APIGroup, e.ObjectRef.APIVersion, e.ObjectRef.Resource, e.ObjectRef.Subresource)
		} else if u, err := url.ParseRequestURI(e.RequestURI); err == nil {
			rc.Resource = u.Path
		} else {
			rc.Resource = e.RequestURI
		}
		if e.ResponseStatus != nil {
			rc.Code = strconv.Itoa(e.ResponseStatus.Code)
		}
		k := rc.key()
		if counts[k] == nil {
			counts[k] = &rc
		}
		counts[k].PerMin += 1 / mins
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out := make([]RequestCount, 0, len(counts))
	for _, rc := range counts {
		out = append(out, *rc)
	}
	return mergeCounts(out), nil
}

// agentProduct keeps a user agent's first token ("kube-apiserver/v1.37.2"
// of "kube-apiserver/v1.37.2 (linux/amd64) kubernetes/abc").
func agentProduct(ua string) string {
	p, _, _ := strings.Cut(ua, " ")
	return p
}

// mergeCounts adds up counts of the same key and sorts by count, largest
// first, then by key.
func mergeCounts(rs []RequestCount) []RequestCount {
	byKey := map[string]int{}
	var out []RequestCount
	for _, r := range rs {
		if i, ok := byKey[r.key()]; ok {
			out[i].PerMin += r.PerMin
			continue
		}
		byKey[r.key()] = len(out)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PerMin != out[j].PerMin {
			return out[i].PerMin > out[j].PerMin
		}
		return out[i].key() < out[j].key()
	})
	return out
}

// saveProfiles fetches a 30 s CPU profile of the kube-apiserver (it must
// run with --profiling=true) into <prefix>cpu.pprof, and its allocations
// before and after (<prefix>allocs-0.pprof, -1): go tool pprof
// -sample_index=alloc_space -base allocs-0.pprof allocs-1.pprof shows
// what it allocated in those 30 s.
func (p *apiserverProbe) saveProfiles(ctx context.Context, prefix string) error {
	// gc=1: the allocation profile is brought up to date by a collection
	// (two in the window: the CPU profile shows them).
	if err := p.saveProfile(ctx, "/debug/pprof/allocs?gc=1", prefix+"allocs-0.pprof"); err != nil {
		return err
	}
	if err := p.saveProfile(ctx, "/debug/pprof/profile?seconds=30", prefix+"cpu.pprof"); err != nil {
		return err
	}
	return p.saveProfile(ctx, "/debug/pprof/allocs?gc=1", prefix+"allocs-1.pprof")
}

func (p *apiserverProbe) saveProfile(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kube-apiserver %s: %s", path, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
