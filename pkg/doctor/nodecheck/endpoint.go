package nodecheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/points"
	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// bodyQuote is how much of a failed answer's body a finding quotes.
const bodyQuote = 300

// answer is what one endpoint of one kubelet said.
type answer struct {
	resource bool
	path     string // as asked, with the summary's query
	// err is a failure before an answer: connection, timeout, TLS.
	err      error
	status   int
	body     string // the first bodyQuote bytes of a failed answer
	location string // of a redirect
	// batch is the decoded answer, or decodeErr why it did not decode
	// (tooLarge: past --kubelet-max-response-bytes).
	batch     *points.Batch
	decodeErr error
	tooLarge  bool
	// asked and received bracket the request on the local clock.
	asked, received time.Time
}

func (a *answer) works() bool { return a.batch != nil }
func (a *answer) refused() bool {
	return a.status == http.StatusUnauthorized || a.status == http.StatusForbidden
}

// subresource is what the kubelet authorizes the request as.
func (a *answer) subresource() string {
	if a.resource {
		return "metrics"
	}
	return "stats"
}

// ask sends one GET to the kubelet as the server's client does (same
// headers, no redirect followed, body bounded) and decodes the answer
// with the server's decoders.
func (p *probe) ask(ctx context.Context, resource bool) *answer {
	a := &answer{resource: resource, asked: p.r.in.Clock.Now()}
	req, err := kubelet.NewRequest(ctx, p.r.cfg.Scheme, p.addr, p.node, resource)
	if err != nil {
		a.err = err
		return a
	}
	a.path = req.URL.RequestURI()
	resp, err := p.r.http.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer func() { _ = resp.Body.Close() }()
	a.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		a.location = resp.Header.Get("Location")
		b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyQuote))
		a.body = printable(b)
		return a
	}
	limit := p.r.cfg.MaxResponseBytes
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	a.received = p.r.in.Clock.Now()
	switch {
	case err != nil:
		a.err = fmt.Errorf("reading the body: %w", err)
	case int64(len(b)) > limit:
		a.tooLarge = true
		a.decodeErr = fmt.Errorf("body larger than %d bytes (--kubelet-max-response-bytes)", limit)
	case resource:
		a.batch, a.decodeErr = kubelet.DecodeResource(bytes.NewReader(b), p.node.Name, a.asked)
	default:
		a.batch, a.decodeErr = kubelet.DecodeSummary(bytes.NewReader(b), p.node.Name, a.asked)
	}
	if a.decodeErr != nil {
		a.body = printable(b[:min(len(b), bodyQuote)])
	}
	return a
}

// printable makes the start of a body fit a one-line message: valid
// UTF-8, control characters as spaces.
func printable(b []byte) string {
	for !utf8.Valid(b) && len(b) > 0 {
		b = b[:len(b)-1]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(string(b)))
}

// endpoints asks both endpoints and reports authorization, each endpoint
// and the clock.
func (p *probe) endpoints(ctx context.Context) {
	if p.r.http == nil {
		p.add(CheckEndpoint, doctor.StatusWarn, "the kubelet endpoints were not asked: "+p.r.why,
			fmt.Sprintf("the endpoints of the kubelet at %s were not asked: %s", p.addr, p.r.why), p.r.whyFix, "")
		return
	}
	res, sum := p.ask(ctx, true), p.ask(ctx, false)
	used := map[bool]bool{true: p.r.cfg.Endpoint != kubelet.EndpointSummary, false: p.r.cfg.Endpoint != kubelet.EndpointResource}
	nodeWorks := used[true] && res.works() || used[false] && sum.works()
	p.authz(ctx, res, sum, used, nodeWorks)
	for _, a := range []*answer{res, sum} {
		if !a.refused() {
			p.endpoint(a, a == res, used, nodeWorks, res, sum)
		}
	}
	p.clock(res, sum)
}

// severity of a failing endpoint: fail when the server gets nothing from
// the node, else a warning.
func severity(a *answer, used map[bool]bool, nodeWorks bool) doctor.Status {
	if used[a.resource] && !nodeWorks {
		return doctor.StatusFail
	}
	return doctor.StatusWarn
}

// consequence says what a failing endpoint means for the server.
func (p *probe) consequence(a *answer, used map[bool]bool, nodeWorks bool, res, sum *answer) string {
	switch {
	case !used[a.resource]:
		return fmt.Sprintf("the server does not ask it (--kubelet-endpoint=%s)", p.r.cfg.Endpoint)
	case a.resource && nodeWorks:
		return "the server falls back to /stats/summary, which works"
	case nodeWorks:
		return "the server uses /metrics/resource, which works, and falls back to /stats/summary only when it fails"
	case used[true] && used[false]:
		return "the other endpoint fails too, so the server gets no metrics from this node"
	}
	return "the server gets no metrics from this node"
}

// authz reports 401 and 403 answers, naming the permission the kubelet
// asked the API server about and, by an access review, whether RBAC or
// the kubelet's own authorization mode refused it.
func (p *probe) authz(ctx context.Context, res, sum *answer, used map[bool]bool, nodeWorks bool) {
	refusedAny := false
	for _, a := range []*answer{res, sum} {
		if !a.refused() {
			continue
		}
		refusedAny = true
		status := severity(a, used, nodeWorks)
		after := p.consequence(a, used, nodeWorks, res, sum)
		perm := "get nodes/" + a.subresource()
		who := p.r.creds.who
		if p.r.creds.operator() && status == doctor.StatusFail {
			// The server's own identity was not tried.
			status = doctor.StatusWarn
		}
		if a.status == http.StatusUnauthorized {
			p.add(CheckAuthz, status, fmt.Sprintf("the kubelet does not authenticate %s (401)", who),
				fmt.Sprintf("the kubelet of node %s answered 401 Unauthorized to %s with %s: its webhook token authentication is off or cannot reach the API server; %s", p.node.Name, a.path, who, after),
				"enable it on the node: authentication.webhook.enabled: true in the KubeletConfiguration (kubelet flag --authentication-token-webhook), then restart the kubelet", a.body)
			continue
		}
		allowed, reviewErr := p.r.reviews.allowed(ctx, p.r.creds, a.subresource(), p.node.Name)
		switch {
		case reviewErr == nil && allowed:
			p.add(CheckAuthz, status, fmt.Sprintf("the kubelet refuses %s although RBAC allows it: its authorization mode is not Webhook", perm),
				fmt.Sprintf("the kubelet of node %s answered 403 Forbidden to %s although RBAC allows %s to %s: the kubelet does not ask the API server (its authorization mode is not Webhook); %s", p.node.Name, a.path, p.r.creds.user, perm, after),
				"set authorization.mode: Webhook in the node's KubeletConfiguration (kubelet flag --authorization-mode=Webhook), then restart the kubelet", a.body)
		case reviewErr == nil:
			p.add(CheckAuthz, status, fmt.Sprintf("RBAC does not allow the server %s", perm),
				fmt.Sprintf("the kubelet of node %s answered 403 Forbidden to %s: RBAC does not allow %s to %s (the kubelet's webhook authorization asks the API server); %s", p.node.Name, a.path, p.r.creds.user, perm, after),
				fmt.Sprintf("grant %s (and the other endpoint's) to %s: the ClusterRole system:metrics-server of the server's manifests has both, bound by the ClusterRoleBinding system:metrics-server; check with kubectl auth can-i get nodes --subresource=%s --as=%s", perm, p.r.creds.user, a.subresource(), p.r.creds.user), a.body)
		default:
			p.add(CheckAuthz, status, fmt.Sprintf("the kubelet refuses %s for %s (403)", perm, who),
				fmt.Sprintf("the kubelet of node %s answered 403 Forbidden to %s with %s: RBAC does not allow %s, or the kubelet's authorization mode is not Webhook; %s", p.node.Name, a.path, who, perm, after),
				fmt.Sprintf("grant %s to the server's ServiceAccount (the ClusterRole system:metrics-server of its manifests) and check the kubelet's authorization.mode is Webhook", perm),
				joinDetail(a.body, reviewErr))
		}
	}
	if !refusedAny && (res.status != 0 || sum.status != 0) {
		p.add(CheckAuthz, doctor.StatusOK, "the kubelet accepts the server's credentials",
			fmt.Sprintf("the kubelet accepts %s for nodes/metrics and nodes/stats", p.r.creds.who), "", "")
	}
}

func joinDetail(body string, err error) string {
	if err == nil {
		return body
	}
	return fmt.Sprintf("%s (access review: %v)", body, err)
}

// endpoint reports one endpoint's answer.
func (p *probe) endpoint(a *answer, resource bool, used map[bool]bool, nodeWorks bool, res, sum *answer) {
	if a.works() {
		n := 0
		for _, pod := range a.batch.Pods {
			n += len(pod.Containers)
		}
		p.add(CheckEndpoint, doctor.StatusOK, a.pathName()+" answers",
			fmt.Sprintf("%s answers: %d pods, %d containers, decoded as the server decodes it", a.path, len(a.batch.Pods), n), "", "")
		return
	}
	status := severity(a, used, nodeWorks)
	after := p.consequence(a, used, nodeWorks, res, sum)
	var what, cause, fix string
	switch {
	case a.err != nil:
		cause, fix = kubelet.ExplainTLS(a.err, p.addr)
		if cause == "" {
			cause = "no answer: " + shortErr(a.err)
			fix = "check the kubelet's load and log on the node (journalctl -u kubelet)"
		}
		what = fmt.Sprintf("%s fails: %s", a.pathName(), cause)
	case a.status >= 300 && a.status < 400:
		what = fmt.Sprintf("%s fails: redirect %d to %q, which the server never follows", a.pathName(), a.status, a.location)
		fix = fmt.Sprintf("check what answers at %s: a kubelet does not redirect", p.addr)
	case a.status != 0 && a.status != http.StatusOK:
		what = fmt.Sprintf("%s fails: http status %d: %s", a.pathName(), a.status, a.body)
		fix = p.statusFix(a)
	case a.tooLarge:
		what = fmt.Sprintf("%s fails: %v", a.pathName(), a.decodeErr)
		fix = fmt.Sprintf("raise the server's --kubelet-max-response-bytes (now %d)", p.r.cfg.MaxResponseBytes)
	default:
		what = fmt.Sprintf("%s fails: the answer does not decode: %v", a.pathName(), a.decodeErr)
		fix = fmt.Sprintf("check what answers at %s: this is not the kubelet's format", p.addr)
	}
	groupCause := fmt.Sprintf("%s fails", a.pathName())
	switch {
	case a.status != 0 && a.status != http.StatusOK:
		groupCause += fmt.Sprintf(" with http status %d", a.status)
	case a.tooLarge:
		groupCause += ": the answer is too large"
	case a.decodeErr != nil:
		groupCause += ": the answer does not decode"
	case errors.Is(a.err, context.DeadlineExceeded):
		groupCause += ": no answer in time"
	case a.err != nil:
		groupCause += ": no answer"
	}
	p.add(CheckEndpoint, status, groupCause, fmt.Sprintf("node %s: %s; %s", p.node.Name, what, after), fix, a.body)
}

// pathName is the endpoint's path without the query.
func (a *answer) pathName() string {
	if a.resource {
		path, _, _ := strings.Cut(a.path, "?")
		return path
	}
	return kubelet.SummaryPath
}

// statusFix says what to do about an HTTP error status of an endpoint.
func (p *probe) statusFix(a *answer) string {
	switch {
	case a.status == http.StatusNotFound && a.resource:
		return "the kubelet (or node emulator) does not serve " + a.pathName() + ": keep --kubelet-endpoint=auto (it falls back to /stats/summary), or set the node annotation " + kubelet.ResourcePathAnnotation + " to the path it serves"
	case a.status == http.StatusNotFound:
		return "the kubelet does not serve /stats/summary: use --kubelet-endpoint=auto or resource"
	case a.status >= 500 && a.resource:
		return "see the kubelet's log on the node (journalctl -u kubelet) for this error; with --kubelet-endpoint=auto the server falls back to /stats/summary"
	case a.status >= 500:
		return "see the kubelet's log on the node (journalctl -u kubelet) for this error (a container runtime's stats failing, such as cri-o's imageFs error); the server can use /metrics/resource instead (--kubelet-endpoint=auto or resource)"
	}
	return "see the kubelet's log on the node (journalctl -u kubelet)"
}

// shortErr drops the method and URL net/http puts before a transport
// error: the finding names them already.
func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// clock compares the newest sample time the kubelet reported with the
// local clock when its answer arrived. A kubelet's samples are some
// seconds old (its housekeeping interval), so only a difference above
// SkewWarn is worth a word.
func (p *probe) clock(res, sum *answer) {
	a := res
	if !res.works() || newest(res) == 0 {
		a = sum
	}
	if !a.works() {
		return
	}
	ts := newest(a)
	if ts == 0 {
		return
	}
	skew := time.Unix(0, ts).Sub(a.received)
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	if skew.Abs() <= p.r.in.SkewWarn {
		p.add(CheckClock, doctor.StatusOK, fmt.Sprintf("the kubelet's sample times are within %v of this machine's clock", p.r.in.SkewWarn),
			fmt.Sprintf("the kubelet's newest sample (%s) is %s %s this machine's clock", a.pathName(), span(skew), dir), "", "")
		return
	}
	p.add(CheckClock, doctor.StatusWarn, fmt.Sprintf("the kubelet's clock is more than %v %s this machine's", p.r.in.SkewWarn, dir),
		fmt.Sprintf("the newest sample of node %s's kubelet (%s) is %.0f s %s this machine's clock (warned above %v): the node's clock or this machine's is off (a sample far behind can also be stale stats)", p.node.Name, a.pathName(), skew.Abs().Seconds(), dir, p.r.in.SkewWarn),
		"sync the clocks (chrony or systemd-timesyncd) of the node and of this machine; the server's rates use the kubelet's own times, but the timestamps it serves the HPA are the kubelet's",
		"sample at "+stamp(time.Unix(0, ts))+", received at "+stamp(a.received))
}

// newest returns the newest sample time of a decoded answer in Unix
// nanoseconds; 0 when the kubelet gave no time (the decoder then stamps
// the request time, which says nothing of its clock).
func newest(a *answer) int64 {
	if a.batch == nil {
		return 0
	}
	asked := a.asked.UnixNano()
	best := int64(0)
	consider := func(ts int64) {
		if ts != asked && ts > best {
			best = ts
		}
	}
	if a.batch.NodePoint.Has != 0 {
		consider(a.batch.NodePoint.Timestamp)
	}
	for _, pod := range a.batch.Pods {
		for _, c := range pod.Containers {
			consider(c.Timestamp)
		}
	}
	return best
}
