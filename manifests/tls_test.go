package manifests

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// insecureOverlay is the one install that verifies neither hop.
const insecureOverlay = "overlays/test"

// apiServiceObject is what the TLS checks read of an APIService.
type apiServiceObject struct {
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Service struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"service"`
		CABundle              string `json:"caBundle"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
	} `json:"spec"`
}

// certificate is what the TLS checks read of a cert-manager Certificate.
type certificate struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		SecretName string   `json:"secretName"`
		DNSNames   []string `json:"dnsNames"`
		IsCA       bool     `json:"isCA"`
	} `json:"spec"`
}

// TestEveryInstallVerifiesTLS renders the base and every overlay but the
// test overlay and checks both hops: the kube-apiserver verifies our
// serving certificate (no insecureSkipTLSVerify, and each APIService gets
// a CA from the server's bootstrap or from cert-manager, for a certificate
// that names the Service as the kube-apiserver dials it,
// <service>.<namespace>.svc), and the server verifies the kubelets' (no
// --kubelet-insecure-tls).
func TestEveryInstallVerifiesTLS(t *testing.T) {
	for _, dir := range installs(t) {
		if dir == insecureOverlay {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			deployments := deployments(t, objs)
			for _, d := range deployments {
				for _, a := range d.Spec.Template.Spec.Containers[0].Args {
					if flagName(a) == "--kubelet-insecure-tls" || flagName(a) == "--deprecated-kubelet-completely-insecure" {
						t.Errorf("Deployment %s runs with %s: kubelet TLS is not verified", d.Name, a)
					}
				}
			}
			for _, o := range objs {
				if o.Kind != "APIService" {
					continue
				}
				var a apiServiceObject
				mustUnmarshal(t, o, &a)
				if a.Spec.InsecureSkipTLSVerify {
					t.Errorf("APIService %s sets insecureSkipTLSVerify", a.Metadata.Name)
				}
				if len(deployments) == 0 {
					continue // overlays/local: the local cluster registers the CA
				}
				if err := caSource(t, a, objs, deployments); err != nil {
					t.Errorf("APIService %s: %v", a.Metadata.Name, err)
				}
			}
		})
	}
}

// TestTestOverlayIsTheInsecureOne keeps the test overlay what its comment
// says: it skips verification on both hops (for test clusters with
// self-signed kubelet certificates), so it is never mistaken for a
// production manifest by the checks above being skipped for the wrong one.
func TestTestOverlayIsTheInsecureOne(t *testing.T) {
	objs := render(t, insecureOverlay)
	apiServices := 0
	for _, o := range objs {
		if o.Kind != "APIService" {
			continue
		}
		apiServices++
		var a apiServiceObject
		mustUnmarshal(t, o, &a)
		if !a.Spec.InsecureSkipTLSVerify {
			t.Errorf("APIService %s of %s verifies the server, which then needs a CA the overlay does not give", a.Metadata.Name, insecureOverlay)
		}
	}
	ds := deployments(t, objs)
	if apiServices == 0 || len(ds) == 0 {
		t.Fatalf("%s renders %d APIServices and %d Deployments: nothing to check", insecureOverlay, apiServices, len(ds))
	}
	for _, d := range ds {
		args := d.Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--kubelet-insecure-tls") {
			t.Errorf("Deployment %s of %s lacks --kubelet-insecure-tls: %v", d.Name, insecureOverlay, args)
		}
		if v := flagValue(args, "--tls-bootstrap-secret"); v != "" {
			t.Errorf("Deployment %s of %s runs the bootstrap (%s), whose caBundle would undo insecureSkipTLSVerify", d.Name, insecureOverlay, v)
		}
	}
}

// caSource says where the APIService's caBundle comes from, or why it
// comes from nowhere.
func caSource(t *testing.T, a apiServiceObject, objs []object, deployments []appsv1.Deployment) error {
	t.Helper()
	svc, ns := a.Spec.Service.Name, a.Spec.Service.Namespace
	dialed := svc + "." + ns + ".svc" // the name the aggregator verifies
	if a.Spec.CABundle != "" {
		return nil
	}
	if from := a.Metadata.Annotations["cert-manager.io/inject-ca-from"]; from != "" {
		return certManagerSource(t, from, dialed, objs, deployments)
	}
	for _, d := range deployments {
		args := d.Spec.Template.Spec.Containers[0].Args
		secret := flagValue(args, "--tls-bootstrap-secret")
		if secret == "" {
			continue
		}
		apiServices := defaultBootstrapAPIServices
		if v := flagValue(args, "--tls-bootstrap-apiservices"); v != "" {
			apiServices = strings.Split(v, ",")
		}
		if !slices.Contains(apiServices, a.Metadata.Name) {
			return fmt.Errorf("the bootstrap of Deployment %s does not patch it (--tls-bootstrap-apiservices %v)", d.Name, apiServices)
		}
		service := "metrics-server"
		if v := flagValue(args, "--tls-bootstrap-service"); v != "" {
			service = v
		}
		secretNS, _, _ := strings.Cut(secret, "/")
		if service != svc || secretNS != ns {
			return fmt.Errorf("the bootstrap's certificate names %s.%s.svc, the kube-apiserver dials %s", service, secretNS, dialed)
		}
		return nil
	}
	return fmt.Errorf("no caBundle, no cert-manager.io/inject-ca-from and no Deployment with --tls-bootstrap-secret: the kube-apiserver cannot verify the server")
}

// certManagerSource checks that cert-manager's CA injector has a
// Certificate to take the CA from, that it names the Service as dialed,
// and that the server serves it: its Secret mounted and named by
// --tls-cert-file and --tls-private-key-file.
func certManagerSource(t *testing.T, from, dialed string, objs []object, deployments []appsv1.Deployment) error {
	t.Helper()
	var cert *certificate
	for _, o := range objs {
		if o.Kind != "Certificate" {
			continue
		}
		var c certificate
		mustUnmarshal(t, o, &c)
		if c.Metadata.Namespace+"/"+c.Metadata.Name == from {
			cert = &c
		}
	}
	if cert == nil {
		return fmt.Errorf("cert-manager.io/inject-ca-from names %s, which is not rendered", from)
	}
	if cert.Spec.IsCA || !slices.Contains(cert.Spec.DNSNames, dialed) {
		return fmt.Errorf("Certificate %s is not a serving certificate for %s (isCA %v, dnsNames %v)", from, dialed, cert.Spec.IsCA, cert.Spec.DNSNames)
	}
	for _, d := range deployments {
		spec := d.Spec.Template.Spec
		args := spec.Containers[0].Args
		if v := flagValue(args, "--tls-bootstrap-secret"); v != "" {
			return fmt.Errorf("Deployment %s runs the bootstrap (%s) beside cert-manager: both would write the caBundle", d.Name, v)
		}
		var mount string
		for _, v := range spec.Volumes {
			if v.Secret == nil || v.Secret.SecretName != cert.Spec.SecretName {
				continue
			}
			for _, m := range spec.Containers[0].VolumeMounts {
				if m.Name == v.Name {
					mount = m.MountPath
				}
			}
		}
		if mount == "" {
			return fmt.Errorf("Deployment %s does not mount Secret %s of Certificate %s", d.Name, cert.Spec.SecretName, from)
		}
		if c, k := flagValue(args, "--tls-cert-file"), flagValue(args, "--tls-private-key-file"); c != path.Join(mount, "tls.crt") || k != path.Join(mount, "tls.key") {
			return fmt.Errorf("Deployment %s serves --tls-cert-file=%q --tls-private-key-file=%q, not the Secret mounted at %s", d.Name, c, k, mount)
		}
	}
	return nil
}

func deployments(t *testing.T, objs []object) []appsv1.Deployment {
	t.Helper()
	var out []appsv1.Deployment
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		mustUnmarshal(t, o, &d)
		if len(d.Spec.Template.Spec.Containers) == 0 {
			t.Fatalf("Deployment %s has no container", d.Name)
		}
		out = append(out, d)
	}
	return out
}

// flagName is "--name" of "--name=value" or "--name".
func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	return name
}

// flagValue is the value of the last --name=value in args, "" when absent.
func flagValue(args []string, name string) string {
	v := ""
	for _, a := range args {
		if n, value, ok := strings.Cut(a, "="); ok && n == name {
			v = value
		}
	}
	return v
}
