package chart

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	promql "github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatormetrics "k8s.io/kube-aggregator/pkg/controllers/status/metrics"
	"sigs.k8s.io/yaml"
)

// prometheusRule holds the spec of a prometheus-operator PrometheusRule: the
// rule groups, in the format of a Prometheus rules file.
type prometheusRule struct {
	Spec struct {
		Groups []map[string]any `json:"groups"`
	} `json:"spec"`
}

// ruleGroups renders the chart with prometheusRule.enabled (and values) and
// parses its groups with Prometheus' own rule-file parser, as promtool
// check rules would: unknown fields, bad durations, PromQL that does not
// parse and annotation templates that do not parse are errors.
func ruleGroups(t *testing.T, values ...string) *rulefmt.RuleGroups {
	t.Helper()
	objs := mustRender(t, append([]string{"prometheusRule.enabled=true"}, values...)...)
	var pr prometheusRule
	objs.decode(t, "PrometheusRule/metrics-server", &pr)
	return parseRules(t, "the chart's PrometheusRule", pr)
}

func parseRules(t *testing.T, what string, pr prometheusRule) *rulefmt.RuleGroups {
	t.Helper()
	content, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, promql.NewParser(promql.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
	if len(errs) > 0 {
		t.Fatalf("%s does not parse as Prometheus rules:\n%s", what, content)
	}
	return groups
}

// TestPrometheusRulesParse checks the rendered alerts with Prometheus'
// rule parser (promtool itself does not build from the module proxy: its
// go.mod has replace directives), with the defaults and with every value
// that changes them.
func TestPrometheusRulesParse(t *testing.T) {
	for _, values := range [][]string{
		nil,
		{"prometheusRule.selector=job=\"kube-system/metrics\"", "prometheusRule.for=30m", "prometheusRule.freshnessSeconds=45", "prometheusRule.additionalRuleLabels.team=platform"},
	} {
		t.Run(strings.Join(values, ","), func(t *testing.T) {
			groups := ruleGroups(t, values...)
			var alerts []string
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					alerts = append(alerts, r.Alert)
					if r.Labels["severity"] == "" {
						t.Errorf("%s has no severity label", r.Alert)
					}
					for _, a := range []string{"summary", "description", "runbook_url"} {
						if r.Annotations[a] == "" {
							t.Errorf("%s has no %s annotation", r.Alert, a)
						}
					}
					if want := "#" + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
						t.Errorf("%s: runbook_url %q does not end in %s", r.Alert, r.Annotations["runbook_url"], want)
					}
					if len(values) > 0 && r.Labels["team"] != "platform" {
						t.Errorf("%s: labels %v lack additionalRuleLabels' team", r.Alert, r.Labels)
					}
				}
			}
			sort.Strings(alerts)
			want := []string{"MetricsServerAPIServiceUnavailable", "MetricsServerKubeletRequestsFailing", "MetricsServerMetricsStale", "MetricsServerNodeScrapeFailing", "MetricsServerScrapeStalled"}
			if diff := cmp.Diff(want, alerts); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrometheusRulesSelectOurSeries checks that every rule over the
// server's own series carries prometheusRule.selector (by default the job
// and namespace the ServiceMonitor gives them), so a second metrics-server
// or another exporter cannot set our alerts off.
func TestPrometheusRulesSelectOurSeries(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   map[string]string
	}{
		{nil, map[string]string{"job": "metrics-server", "namespace": "kube-system"}},
		{[]string{`prometheusRule.selector=job="ops-metrics"`}, map[string]string{"job": "ops-metrics"}},
	} {
		t.Run(strings.Join(tc.values, ","), func(t *testing.T) {
			checked := 0
			for _, sel := range selectors(t, ruleGroups(t, tc.values...)) {
				if !strings.HasPrefix(sel.metric, "metrics_server_") {
					continue
				}
				checked++
				got := map[string]string{}
				for _, m := range sel.matchers {
					if m.Type == labels.MatchEqual && (m.Name == "job" || m.Name == "namespace") {
						got[m.Name] = m.Value
					}
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s: %s selects (-want +got):\n%s", sel.alert, sel.metric, diff)
				}
			}
			if checked == 0 {
				t.Fatal("no rule reads a metrics_server_ series: nothing was checked")
			}
		})
	}
}

// TestPrometheusRulesNameRealMetrics checks that every series a rule reads
// is one that really exists: the server's own metrics as pkg/ registers
// them (each *Opts literal's Namespace_Subsystem_Name, with the
// _bucket/_sum/_count series of a histogram), and the kube-apiserver's
// aggregator_unavailable_apiservice, gathered from kube-aggregator's own
// collector for an unavailable v1beta1.metrics.k8s.io and matched against
// the rule's label matchers.
func TestPrometheusRulesNameRealMetrics(t *testing.T) {
	ours := serverMetricNames(t)
	if len(ours) < 8 {
		t.Fatalf("found only %v in pkg/: the scan of metric options is broken", ours)
	}
	aggregator := aggregatorSeries(t)
	for _, sel := range selectors(t, ruleGroups(t)) {
		if strings.HasPrefix(sel.metric, "metrics_server_") {
			if !ours[sel.metric] {
				t.Errorf("%s reads %s, which the server does not export (it has %v)", sel.alert, sel.metric, sortedKeys(ours))
			}
			continue
		}
		series, ok := aggregator[sel.metric]
		if !ok {
			t.Errorf("%s reads %s, neither the server's nor the kube-apiserver's aggregator_unavailable_apiservice", sel.alert, sel.metric)
			continue
		}
		for _, v := range []string{"v1", "v1beta1"} {
			lset := labels.FromStrings(append([]string{"__name__", sel.metric}, "name", v+".metrics.k8s.io")...)
			if !matches(sel.matchers, lset) {
				t.Errorf("%s: %v does not select %s", sel.alert, sel.matchers, lset)
			}
		}
		for _, other := range []string{"v1beta1.custom.metrics.k8s.io", "v1beta1Xmetrics.k8s.io"} {
			if matches(sel.matchers, labels.FromStrings("__name__", sel.metric, "name", other)) {
				t.Errorf("%s: %v selects APIService %s too", sel.alert, sel.matchers, other)
			}
		}
		if !matches(sel.matchers, series) {
			t.Errorf("%s: %v does not select the series kube-aggregator exports, %s", sel.alert, sel.matchers, series)
		}
	}
}

// selector is one vector selector of an alert's expression.
type selector struct {
	alert, metric string
	matchers      []*labels.Matcher
}

func selectors(t *testing.T, groups *rulefmt.RuleGroups) []selector {
	t.Helper()
	var out []selector
	p := promql.NewParser(promql.Options{})
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			promql.Inspect(expr, func(n promql.Node, _ []promql.Node) error {
				if vs, ok := n.(*promql.VectorSelector); ok {
					out = append(out, selector{alert: r.Alert, metric: vs.Name, matchers: vs.LabelMatchers})
				}
				return nil
			})
		}
	}
	if len(out) == 0 {
		t.Fatal("no selectors in the rules")
	}
	return out
}

func matches(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// serverMetricNames scans the server's packages (pkg/, without tests) for
// component-base metric options literals and returns the series names
// they export.
func serverMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	root := filepath.Join(repoRoot(t), "pkg")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			parts := map[string]string{}
			named := false
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, kok := kv.Key.(*ast.Ident)
				named = named || (kok && key.Name == "Name")
				val, vok := kv.Value.(*ast.BasicLit)
				if kok && vok && val.Kind == token.STRING {
					parts[key.Name], _ = strconv.Unquote(val.Value)
				}
			}
			if !named {
				return true // options of something else, such as promhttp.HandlerOpts
			}
			if parts["Name"] == "" {
				t.Errorf("%s: a %s without a literal Name: teach serverMetricNames to read it", fset.Position(lit.Pos()), sel.Sel.Name)
				return true
			}
			var fq []string
			for _, p := range []string{parts["Namespace"], parts["Subsystem"], parts["Name"]} {
				if p != "" {
					fq = append(fq, p)
				}
			}
			name := strings.Join(fq, "_")
			names[name] = true
			if sel.Sel.Name == "HistogramOpts" || sel.Sel.Name == "SummaryOpts" {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[name+suffix] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// aggregatorSeries returns the series kube-aggregator's availability
// collector exports (as the kube-apiserver does) for an unavailable
// v1beta1.metrics.k8s.io, by metric name.
func aggregatorSeries(t *testing.T) map[string]labels.Labels {
	t.Helper()
	reg := metrics.NewKubeRegistry()
	m := aggregatormetrics.New()
	if err := m.Register(reg.Register, reg.CustomRegister); err != nil {
		t.Fatal(err)
	}
	m.SetUnavailableGauge(&apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.metrics.k8s.io"},
		Status: apiregistrationv1.APIServiceStatus{Conditions: []apiregistrationv1.APIServiceCondition{{
			Type:               apiregistrationv1.Available,
			Status:             apiregistrationv1.ConditionStatus(corev1.ConditionFalse),
			Reason:             "FailedDiscoveryCheck",
			LastTransitionTime: metav1.NewTime(time.Now()),
		}}},
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]labels.Labels{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			kv := []string{"__name__", f.GetName()}
			for _, l := range s.GetLabel() {
				kv = append(kv, l.GetName(), l.GetValue())
			}
			out[f.GetName()] = labels.FromStrings(kv...)
		}
	}
	if _, ok := out["aggregator_unavailable_apiservice"]; !ok {
		t.Fatalf("kube-aggregator exported %v, not aggregator_unavailable_apiservice", out)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestMonitoringComponentIsTheChart checks that the kustomize component
// manifests/components/monitoring carries the chart's alerts as the chart
// renders them for the base (release metrics-server in kube-system), and a
// ServiceMonitor that scrapes the base's Service the way the chart's does.
func TestMonitoringComponentIsTheChart(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "manifests/components/monitoring")
	component := objects{}
	for _, name := range []string{"prometheusrule.yaml", "servicemonitor.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for k, o := range parse(t, name, b) {
			component[k] = o
		}
	}
	chart := mustRender(t, "prometheusRule.enabled=true", "serviceMonitor.enabled=true")

	var want, got prometheusRule
	chart.decode(t, "PrometheusRule/metrics-server", &want)
	component.decode(t, "PrometheusRule/metrics-server", &got)
	parseRules(t, "manifests/components/monitoring", got)
	if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
		t.Errorf("the component's rules differ from the chart's (-chart +component):\n%s", diff)
	}

	var wantSM, gotSM map[string]any
	chart.decode(t, "ServiceMonitor/metrics-server", &wantSM)
	component.decode(t, "ServiceMonitor/metrics-server", &gotSM)
	// The chart selects its Service by its own labels and names the job
	// after the release (app.kubernetes.io/instance), the component
	// selects the base's Service by k8s-app and names the job after it:
	// metrics-server either way, which the rules' selector expects.
	var sm serviceMonitor
	component.decode(t, "ServiceMonitor/metrics-server", &sm)
	checkSelects(t, "the component's ServiceMonitor", sm.Spec.Selector.MatchLabels, map[string]string{"k8s-app": "metrics-server"})
	if sm.Spec.JobLabel != "k8s-app" || sm.Metadata.Namespace != "kube-system" {
		t.Errorf("the component's ServiceMonitor: jobLabel %q in %q, want k8s-app (job=\"metrics-server\") in kube-system", sm.Spec.JobLabel, sm.Metadata.Namespace)
	}
	wantEndpoints := wantSM["spec"].(map[string]any)["endpoints"]
	gotEndpoints := gotSM["spec"].(map[string]any)["endpoints"]
	if diff := cmp.Diff(wantEndpoints, gotEndpoints); diff != "" {
		t.Errorf("the component's endpoints differ from the chart's (-chart +component):\n%s", diff)
	}
}
