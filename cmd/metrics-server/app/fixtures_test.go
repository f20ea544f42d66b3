package app

import (
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
)

// loopbackNode is a Node whose kubelet runServer reaches at 127.0.0.1 (its
// only address, InternalIP) and port; its UID is "uid-<name>".
func loopbackNode(name string, port int32) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
		},
	}
}

// fakeMetadata is a metadata client holding objs (pods made by podMeta),
// as the server's pod informer lists them.
func fakeMetadata(t *testing.T, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

// startDBKubelet serves a large node's kubelet (23.5 cores, 160 GiB) that
// runs ns1/db-0 (postgres at 6 cores and 18 GiB, an exporter beside it)
// and wants kubeletSecretToken; it is closed when the test ends.
func startDBKubelet(t *testing.T) *httptest.Server {
	t.Helper()
	k := &fakeKubelet{wantToken: kubeletSecretToken, nodeMilliCores: 23_500, nodeMemoryBytes: 160 << 30, pods: []fakePod{
		{"ns1", "db-0", []fakeContainer{{"postgres", 6_000, 18 << 30}, {"exporter", 15, 40 << 20}}},
	}}
	srv := k.serve()
	t.Cleanup(srv.Close)
	return srv
}

// secureOptions are the server's options as deployed: the serving
// certificate pki.MetricsServing of files, client certificates of the
// cluster CA, the front proxy's request headers (its CA and
// pki.ProxyClientName), and delegated authentication and authorization
// through authKubeconfig.
func secureOptions(files pki.Files, authKubeconfig string) *options.Options {
	opts := options.NewOptions()
	opts.SecureServing.ServerCert.CertKey = genericoptions.CertKey{
		CertFile: files.Path(pki.MetricsServing + ".crt"),
		KeyFile:  files.Path(pki.MetricsServing + ".key"),
	}
	opts.Authentication.RemoteKubeConfigFile = authKubeconfig
	opts.Authentication.ClientCert.ClientCA = files.Path(pki.ClusterCA + ".crt")
	opts.Authentication.RequestHeader.ClientCAFile = files.Path(pki.FrontProxyCA + ".crt")
	opts.Authentication.RequestHeader.AllowedNames = []string{pki.ProxyClientName}
	opts.Authorization.RemoteKubeConfigFile = authKubeconfig
	return opts
}
