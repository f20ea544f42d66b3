package nodecheck

import (
	"context"
	"errors"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/pkg/kubeletflags"
)

// tokenSeconds is the life of the token requested for the server's
// ServiceAccount: the shortest the API accepts, far more than a run takes.
const tokenSeconds = 600

// errOperator: an access review needs the server's identity, and the
// kubelets were asked with the operator's.
var errOperator = errors.New("the kubelets were asked with your own credentials, not the server's")

// creds are the credentials the kubelets are asked with.
type creds struct {
	// cfg holds only credentials (a bearer token, or the operator's).
	cfg *rest.Config
	// who names them in messages: "the token of ServiceAccount
	// kube-system/metrics-server".
	who string
	// user is the ServiceAccount's user name when its token is used, for
	// access reviews; "" for the operator's own credentials.
	user   string
	groups []string
}

// operator says whether these are the operator's own credentials.
func (c creds) operator() bool { return c.user == "" }

// findCreds requests a token of the server's ServiceAccount, so the
// kubelets judge the server's identity; when that is refused it falls back
// to the operator's credentials and says so in a warning, since a 401 or
// 403 then concerns the operator, not the server.
func findCreds(ctx context.Context, in Input, ko *kubeletflags.Options) (creds, []doctor.Finding) {
	sa := in.ServiceAccount
	target := fmt.Sprintf("serviceaccount/%s/%s", sa.Namespace, sa.Name)
	var findings []doctor.Finding
	if ko.ClientCertFile != "" {
		findings = append(findings, doctor.Finding{
			Check: CheckCredentials, Target: target, Status: doctor.StatusWarn,
			Message: fmt.Sprintf("the server authenticates to kubelets with the client certificate %s, which doctor cannot use; the kubelets are asked with the ServiceAccount's token instead, so their 401/403 answers may differ from the server's", ko.ClientCertFile),
		})
	}
	exp := int64(tokenSeconds)
	tr, err := in.Client.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err == nil && tr.Status.Token != "" {
		cfg := &rest.Config{BearerToken: tr.Status.Token}
		return creds{
			cfg:    cfg,
			who:    fmt.Sprintf("the token of ServiceAccount %s/%s", sa.Namespace, sa.Name),
			user:   fmt.Sprintf("system:serviceaccount:%s:%s", sa.Namespace, sa.Name),
			groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated"},
		}, findings
	}
	f := doctor.Finding{Check: CheckCredentials, Target: target, Status: doctor.StatusWarn}
	if err != nil {
		f.Detail = err.Error()
	}
	switch {
	case apierrors.IsForbidden(err):
		f.Message = fmt.Sprintf("you may not request a token of ServiceAccount %s/%s, so the kubelets are asked with your own credentials: a 401 or 403 from a kubelet below concerns you, not the server", sa.Namespace, sa.Name)
		f.Fix = fmt.Sprintf("run doctor as a user who may create serviceaccounts/token in %s (kubectl auth can-i create serviceaccounts/token -n %s)", sa.Namespace, sa.Namespace)
	case apierrors.IsNotFound(err):
		f.Message = fmt.Sprintf("the ServiceAccount %s/%s does not exist, so the server cannot run as it; the kubelets are asked with your own credentials", sa.Namespace, sa.Name)
		f.Fix = "apply the server's manifests (kubectl apply -k manifests/base), or tell doctor the server's ServiceAccount"
	default:
		f.Message = fmt.Sprintf("requesting a token of ServiceAccount %s/%s failed, so the kubelets are asked with your own credentials", sa.Namespace, sa.Name)
	}
	findings = append(findings, f)
	cfg := &rest.Config{}
	if in.Rest != nil {
		cfg = rest.CopyConfig(in.Rest)
	}
	return creds{cfg: cfg, who: "your own credentials"}, findings
}

// kubeletRest builds the configuration of the HTTP client that asks the
// kubelets: c's credentials, t's CA, HTTP/1.1 as the server speaks. The
// second result is false when no credential may be sent: no CA is known
// here to verify the kubelets with. Credentials go only to a kubelet whose
// certificate verifies against t's CA, even when the server itself
// verifies nothing (--kubelet-insecure-tls): doctor runs on the
// operator's machine, whose network is not the server's, and a token sent
// unverified goes to whoever answers at a node's address.
func kubeletRest(c creds, t trust) (*rest.Config, bool) {
	if t.plainHTTP {
		return rest.AnonymousClientConfig(c.cfg), true
	}
	if !t.verified() {
		return nil, false
	}
	cfg := rest.CopyConfig(c.cfg)
	cfg.TLSClientConfig = rest.TLSClientConfig{
		CertFile: cfg.TLSClientConfig.CertFile, KeyFile: cfg.TLSClientConfig.KeyFile,
		CertData: cfg.TLSClientConfig.CertData, KeyData: cfg.TLSClientConfig.KeyData,
		CAData:     t.caPEM,
		NextProtos: []string{"http/1.1"},
	}
	// A transport of the caller's would ignore the TLS settings above.
	cfg.Transport = nil
	cfg.Host, cfg.APIPath = "", ""
	cfg.Timeout = 0
	return cfg, true
}
