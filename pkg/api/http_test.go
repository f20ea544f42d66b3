package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	utilcompatibility "k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	compmetrics "k8s.io/component-base/metrics"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/api/generated/openapi"
)

// serveAPI runs the metrics API on a real generic API server over HTTP.
func serveAPI(t *testing.T) *httptest.Server {
	t.Helper()
	ts, _ := serveAPIWith(t, false)
	return ts
}

// serveAPIWith serves the API, with the wire encoding filter when wire is
// set, and returns the pod storage's encoders.
func serveAPIWith(t *testing.T, wire bool) (*httptest.Server, *wireEncodings) {
	t.Helper()
	scheme, codecs := NewScheme()
	cfg := genericapiserver.NewConfig(codecs)
	cfg.EffectiveVersion = utilcompatibility.DefaultBuildEffectiveVersion()
	namer := openapinamer.NewDefinitionNamer(scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = "test", "v0"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = "test", "v0"
	cfg.LoopbackClientConfig = &rest.Config{}
	cfg.ExternalAddress = "127.0.0.1:443"
	if wire {
		cfg.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			return genericapiserver.DefaultBuildHandlerChain(WithWireEncoding(h), c)
		}
	}
	srv, err := cfg.Complete(nil).New("metrics-api-test", genericapiserver.NewEmptyDelegate())
	if err != nil {
		t.Fatal(err)
	}
	nodes, pods := testStorage(t)
	info := genericapiserver.NewDefaultAPIGroupInfo(metrics.GroupName, scheme, metav1.ParameterCodec, codecs)
	info.VersionedResourcesStorageMap = Storage(Config{
		Metrics:      nodes.metrics.(*fakeMetrics),
		NodeLister:   nodes.lister,
		PodLister:    pods.lister,
		NodeSelector: nodes.selector,
		Registry:     compmetrics.NewKubeRegistry(),
		Clock:        clocktesting.NewFakeClock(sampleTime),
	}, codecs)
	if err := srv.InstallAPIGroup(&info); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.PrepareRun().Handler)
	t.Cleanup(ts.Close)
	return ts, info.VersionedResourcesStorageMap["v1"]["pods"].(*podStorage).encodings
}

func TestTypedClientsBothVersionsBothEncodings(t *testing.T) {
	ts := serveAPI(t)
	ctx := context.Background()
	for _, ct := range []string{"application/vnd.kubernetes.protobuf", "application/json"} {
		t.Run(ct, func(t *testing.T) {
			c, err := metricsclient.NewForConfig(&rest.Config{Host: ts.URL, ContentConfig: rest.ContentConfig{ContentType: ct, AcceptContentTypes: ct}})
			if err != nil {
				t.Fatal(err)
			}
			v1nodes, err := c.MetricsV1().NodeMetricses().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b1nodes, err := c.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(v1nodes.Items) != 2 || len(b1nodes.Items) != 2 {
				t.Fatalf("got %d v1 and %d v1beta1 nodes, want 2 each", len(v1nodes.Items), len(b1nodes.Items))
			}
			n := v1nodes.Items[1]
			if n.Name != "node-b" || n.Usage.Cpu().MilliValue() != 2000 || !n.Timestamp.Time.Equal(sampleTime) || n.Window.Duration.Seconds() != 15 {
				t.Errorf("v1 node-b = %+v", n)
			}
			if diff := cmp.Diff(n.Usage, b1nodes.Items[1].Usage); diff != "" {
				t.Errorf("v1 and v1beta1 usage differ:\n%s", diff)
			}
			pods, err := c.MetricsV1beta1().PodMetricses("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) != 2 || pods.Items[0].Name != "web-1" || len(pods.Items[0].Containers) != 2 {
				t.Errorf("v1beta1 pods = %+v", pods.Items)
			}
			pod, err := c.MetricsV1().PodMetricses("ops").Get(ctx, "web-1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := pod.Containers[0].Usage.Cpu().MilliValue(); got != 400 {
				t.Errorf("ops/web-1 cpu %dm, want 400m", got)
			}
			if _, err := c.MetricsV1().NodeMetricses().Get(ctx, "ghost", metav1.GetOptions{}); err == nil || !strings.Contains(err.Error(), `nodemetrics.metrics.k8s.io "ghost" not found`) {
				t.Errorf("get ghost node: %v, want a NotFound naming nodemetrics", err)
			}
		})
	}
}

func TestDiscoveryPrefersV1(t *testing.T) {
	ts := serveAPI(t)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	preferred := ""
	for _, g := range groups.Groups {
		if g.Name == "metrics.k8s.io" {
			for _, v := range g.Versions {
				versions = append(versions, v.Version)
			}
			preferred = g.PreferredVersion.Version
		}
	}
	if diff := cmp.Diff([]string{"v1", "v1beta1"}, versions); diff != "" || preferred != "v1" {
		t.Errorf("metrics.k8s.io versions %v (preferred %q), want v1 first and preferred", versions, preferred)
	}
	for _, gv := range []string{"metrics.k8s.io/v1", "metrics.k8s.io/v1beta1"} {
		rl, err := dc.ServerResourcesForGroupVersion(gv)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rl.APIResources {
			names = append(names, r.Name+":"+r.Kind+":"+strings.Join(r.Verbs, ","))
		}
		if diff := cmp.Diff([]string{"nodes:NodeMetrics:get,list", "pods:PodMetrics:get,list"}, names); diff != "" {
			t.Errorf("%s resources (-want +got):\n%s", gv, diff)
		}
	}
}

// httpGet asks url with an Accept header (none when empty) and returns the
// status and the body.
func httpGet(t *testing.T, url, accept string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, b
}

func TestOpenAPIAndTableOverHTTP(t *testing.T) {
	ts := serveAPI(t)
	get := func(path, accept string) (int, string) {
		t.Helper()
		code, b := httpGet(t, ts.URL+path, accept)
		return code, string(b)
	}
	for _, path := range []string{"/openapi/v2", "/openapi/v3/apis/metrics.k8s.io/v1", "/openapi/v3/apis/metrics.k8s.io/v1beta1"} {
		code, body := get(path, "application/json")
		if code != http.StatusOK || !strings.Contains(body, "NodeMetrics") || !strings.Contains(body, "PodMetrics") {
			t.Errorf("GET %s: %d, NodeMetrics and PodMetrics defined: %v", path, code, strings.Contains(body, "NodeMetrics"))
		}
	}
	code, body := get("/apis/metrics.k8s.io/v1/nodes", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if code != http.StatusOK {
		t.Fatalf("table request: %d %s", code, body)
	}
	var table metav1.Table
	if err := json.Unmarshal([]byte(body), &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) != 2 || table.Rows[0].Cells[0] != "node-a" || len(table.ColumnDefinitions) != 4 {
		t.Errorf("table = %d rows, %d columns, first %v", len(table.Rows), len(table.ColumnDefinitions), table.Rows[0].Cells)
	}
	if code, _ := get("/apis/metrics.k8s.io/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue", ""); code != http.StatusBadRequest {
		t.Errorf("unsupported field selector: %d, want 400", code)
	}
}
