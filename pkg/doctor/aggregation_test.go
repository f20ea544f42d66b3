package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// now is the tests' clock.
var now = time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)

// caPEM is a self-signed CA certificate valid from a year before now until
// notAfter.
func caPEM(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func authConfigMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication"}, Data: data}
}

func TestCheckAggregationLayer(t *testing.T) {
	frontProxyCA := caPEM(t, "front-proxy-ca", now.AddDate(9, 0, 0))
	kubeadm := map[string]string{
		"client-ca-file":                     caPEM(t, "kubernetes", now.AddDate(9, 0, 0)),
		"requestheader-client-ca-file":       frontProxyCA,
		"requestheader-allowed-names":        `["front-proxy-client"]`,
		"requestheader-username-headers":     `["X-Remote-User"]`,
		"requestheader-group-headers":        `["X-Remote-Group"]`,
		"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for key, val := range kubeadm {
			m[key] = val
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	unauthorized := []APIServiceState{
		{Name: "v1beta1.metrics.k8s.io", Found: true, Cause: DecodeAvailable("FailedDiscoveryCheck",
			"failing or missing response from https://127.0.0.1:40117/apis/metrics.k8s.io/v1beta1: bad status from https://127.0.0.1:40117/apis/metrics.k8s.io/v1beta1: 401")},
		{Name: "v1.metrics.k8s.io", Found: true, Cause: DecodeAvailable("FailedDiscoveryCheck",
			"failing or missing response from https://127.0.0.1:40117/apis/metrics.k8s.io/v1: bad status from https://127.0.0.1:40117/apis/metrics.k8s.io/v1: 401")},
	}
	tests := []struct {
		name   string
		data   map[string]string // nil: no ConfigMap
		args   []string
		states []APIServiceState
		// want is "target status: text" per finding, text a part of the
		// message (or of the fix, after "fix:").
		want []string
	}{
		{"kubeadm's", kubeadm, nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication ok: allowed names [front-proxy-client] (published by the kube-apiserver)"}},
		{"no ConfigMap", nil, nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication fail: runs without the aggregation layer"}},
		{"no requestheader CA", with("requestheader-client-ca-file", ""), nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication fail: has no requestheader-client-ca-file"}},
		{"expired requestheader CA", with("requestheader-client-ca-file", caPEM(t, "front-proxy-ca", now.Add(-time.Hour))), nil, nil, []string{
			`configmap/kube-system/extension-apiserver-authentication fail: every requestheader client CA in configmap/kube-system/extension-apiserver-authentication has expired: "front-proxy-ca"`}},
		{"CA rotation: one expired, one valid", with("requestheader-client-ca-file", caPEM(t, "front-proxy-ca-2025", now.Add(-time.Hour))+frontProxyCA), nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication ok: 2 requestheader client CA certificate(s), valid until " + now.AddDate(9, 0, 0).Format(time.RFC3339)}},
		{"requestheader CA file without a certificate", with("requestheader-client-ca-file", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication fail: has a requestheader-client-ca-file without a certificate"}},
		{"no allowed names", with("requestheader-allowed-names", `[]`), nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication warn: any client certificate of that CA may act as a front proxy"}},
		{"no user headers", with("requestheader-username-headers", ""), nil, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication fail: fix:--requestheader-username-headers=X-Remote-User"}},
		{"server's own allowed names contradict", kubeadm,
			[]string{"--cert-dir=/tmp", "--requestheader-client-ca-file=/etc/front-proxy/ca.crt", "--requestheader-allowed-names=aggregator"}, nil, []string{
				"configmap/kube-system/extension-apiserver-authentication fail: metrics-server's --requestheader-allowed-names=aggregator replaces the kube-apiserver's [front-proxy-client]"}},
		{"server's own allowed names agree", kubeadm,
			[]string{"--requestheader-client-ca-file", "/etc/front-proxy/ca.crt", "--requestheader-allowed-names", "front-proxy-client,aggregator"}, nil, []string{
				"configmap/kube-system/extension-apiserver-authentication ok: allowed names [front-proxy-client aggregator] (metrics-server's own flag)"}},
		{"skip lookup", kubeadm, []string{"--authentication-skip-lookup"}, nil, []string{
			"configmap/kube-system/extension-apiserver-authentication fail: runs with --authentication-skip-lookup"}},
		{"401 with allowed names", kubeadm, nil, unauthorized, []string{
			"kube-apiserver proxy client certificate fail: the CN of the kube-apiserver's proxy client certificate is probably not in the kube-apiserver's --requestheader-allowed-names [front-proxy-client]",
		}},
		{"401 without allowed names", with("requestheader-allowed-names", `[]`), nil, unauthorized, []string{
			"kube-apiserver proxy client certificate fail: probably not signed by the requestheader client CA",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			if tt.data != nil {
				objs = append(objs, authConfigMap(tt.data))
			}
			got := CheckAggregationLayer(context.Background(), fake.NewClientset(objs...), AggregationInput{ServerArgs: tt.args, APIServices: tt.states, Now: now})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, f := range got {
				head, text, _ := strings.Cut(tt.want[i], ": ")
				if h := f.Target + " " + string(f.Status); h != head {
					t.Errorf("finding %d = %q, want %q (%+v)", i, h, head, f)
				}
				in := f.Message
				if fix, ok := strings.CutPrefix(text, "fix:"); ok {
					in, text = f.Fix, fix
				}
				if !strings.Contains(in, text) {
					t.Errorf("finding %d: %q does not contain %q", i, in, text)
				}
				if f.Check != "aggregation-layer" {
					t.Errorf("finding %d check = %q", i, f.Check)
				}
			}
		})
	}
}
