package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Kubectl runs the pinned kubectl as the admin and returns its stdout.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlAs(ctx, c.AdminKubeconfig, nil, args...)
}

// KubectlAs runs kubectl with a kubeconfig and optional standard input.
func (c *Cluster) KubectlAs(ctx context.Context, kubeconfig string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.opts.BinDir, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// WriteKubeconfig writes a kubeconfig with a client certificate or a token.
func WriteKubeconfig(path, server, caFile, certFile, keyFile, token string) error {
	user := fmt.Sprintf("    client-certificate: %s\n    client-key: %s\n", certFile, keyFile)
	if token != "" {
		user = fmt.Sprintf("    token: %s\n", token)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: user
  user:
%scontexts:
- name: local
  context:
    cluster: local
    user: user
current-context: local
`, server, caFile, user)
	return os.WriteFile(path, []byte(kc), 0o600)
}

// Client returns a typed client with the admin identity, limited to 200
// requests a second (bursts of 400).
func (c *Cluster) Client() (kubernetes.Interface, error) {
	return c.ClientWithRate(200, 400)
}

// ClientWithRate returns a typed admin client limited to qps requests a
// second with bursts of burst; it speaks protobuf, as controllers do.
func (c *Cluster) ClientWithRate(qps float32, burst int) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = qps, burst
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfig(cfg)
}
