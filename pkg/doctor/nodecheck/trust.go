package nodecheck

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/kubeletflags"
)

// trust is how the kubelets' serving certificates are judged here, mirroring
// how the server judges them.
type trust struct {
	// caPEM and pool verify the chain; nil when no CA is known here.
	caPEM []byte
	pool  *x509.CertPool
	// source names the CA, for messages ("the cluster CA (ConfigMap
	// kube-system/kube-root-ca.crt)").
	source string
	// serverSkips: the server runs with --kubelet-insecure-tls and
	// verifies nothing.
	serverSkips bool
	// plainHTTP: the server runs with
	// --deprecated-kubelet-completely-insecure (no TLS, no credentials).
	plainHTTP bool
	// missing says why the chain cannot be checked, when the server
	// verifies against a CA not known here.
	missing string
}

// verified says whether a certificate that passed the checks here is
// one the server accepts too, so credentials may go to its kubelet.
func (t trust) verified() bool { return t.pool != nil }

// findTrust decides which CA the kubelets' certificates are checked
// against: the one given to doctor; else the server's
// --kubelet-certificate-authority file when this machine can read it (a
// control-plane node); else, for a server without that flag, the CA of its
// in-cluster configuration, which is the ConfigMap kube-root-ca.crt of its
// namespace (or, failing that, the cluster CA of the operator's
// kubeconfig). Problems reading a CA are findings.
func findTrust(ctx context.Context, in Input, ko *kubeletflags.Options) (trust, []doctor.Finding) {
	t := trust{serverSkips: ko.InsecureTLS, plainHTTP: ko.CompletelyInsecure}
	if t.plainHTTP {
		return t, nil
	}
	var findings []doctor.Finding
	pemData, source := in.KubeletCA, "the kubelet CA given to doctor"
	if pemData == nil && in.KubeletCAFile != "" {
		b, err := os.ReadFile(in.KubeletCAFile)
		if err != nil {
			findings = append(findings, doctor.Finding{
				Check: CheckSettings, Target: "file/" + in.KubeletCAFile, Status: doctor.StatusFail,
				Message: fmt.Sprintf("cannot read the kubelet CA given to doctor: %v", err),
				Fix:     "give a readable PEM file with --kubelet-certificate-authority",
			})
		}
		pemData, source = b, fmt.Sprintf("the kubelet CA %s given to doctor", in.KubeletCAFile)
	}
	switch {
	case len(pemData) > 0:
	case ko.InsecureTLS:
		return t, findings
	case ko.CAFile != "":
		b, err := os.ReadFile(ko.CAFile)
		if err != nil {
			t.missing = fmt.Sprintf("the server verifies kubelets with --kubelet-certificate-authority=%s, a file this machine cannot read", ko.CAFile)
			return t, findings
		}
		pemData, source = b, fmt.Sprintf("the server's --kubelet-certificate-authority %s, read on this machine", ko.CAFile)
	default:
		pemData, source = clusterCA(ctx, in)
		if len(pemData) == 0 {
			t.missing = "the server verifies kubelets with the cluster CA, which doctor could read neither from the ConfigMap kube-root-ca.crt nor from your kubeconfig"
			return t, findings
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		findings = append(findings, doctor.Finding{
			Check: CheckSettings, Target: "kubelet-ca", Status: doctor.StatusFail,
			Message: fmt.Sprintf("%s holds no PEM certificate", source),
			Fix:     "give the CA that signs the kubelets' serving certificates, in PEM, with --kubelet-certificate-authority",
		})
		t.missing = source + " holds no PEM certificate"
		return t, findings
	}
	t.caPEM, t.pool, t.source = pemData, pool, source
	return t, findings
}

// clusterCA returns the CA a server without --kubelet-certificate-authority
// verifies kubelets with: its in-cluster configuration's ca.crt, which is
// the ConfigMap kube-root-ca.crt of its namespace, else the cluster CA of
// the operator's kubeconfig.
func clusterCA(ctx context.Context, in Input) ([]byte, string) {
	ns := in.ServiceAccount.Namespace
	cm, err := in.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if err == nil && cm.Data["ca.crt"] != "" {
		return []byte(cm.Data["ca.crt"]), fmt.Sprintf("the cluster CA (ConfigMap %s/kube-root-ca.crt: the server verifies kubelets with it when it has no --kubelet-certificate-authority)", ns)
	}
	if in.Rest == nil {
		return nil, ""
	}
	if b := in.Rest.TLSClientConfig.CAData; len(b) > 0 {
		return b, "the cluster CA of your kubeconfig (the server verifies kubelets with it when it has no --kubelet-certificate-authority)"
	}
	if f := in.Rest.TLSClientConfig.CAFile; f != "" {
		if b, err := os.ReadFile(f); err == nil {
			return b, fmt.Sprintf("the cluster CA %s of your kubeconfig (the server verifies kubelets with it when it has no --kubelet-certificate-authority)", f)
		}
	}
	return nil, ""
}
