package fleet

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// Faults a diagnosis must name (metrics-server doctor): a serving
// certificate without the node's IP address, and a kubelet that
// authenticates no token.
const (
	// ModeHostnameOnlyCert serves a certificate signed by the kubelet CA
	// that names only the node's host name, no IP SAN: what a kubelet's
	// certificate holds when it was made for its name alone, refused by
	// a client that asks the node's IP address.
	ModeHostnameOnlyCert Mode = "hostname-only-cert"
	// ModeRefuseToken answers every request 401 Unauthorized before any
	// other fault, as a kubelet whose webhook token authentication is off
	// (authentication.webhook.enabled: false) answers a bearer token.
	ModeRefuseToken Mode = "refuse-token"
)

// modeCert returns the certificate node n serves in mode m, nil when m
// does not change it. A hostname-only certificate is issued at each
// handshake: the mode is for a few handshakes of a test, not for load.
func (f *Fleet) modeCert(n *node, m Mode) (*tls.Certificate, error) {
	if m != ModeHostnameOnlyCert {
		return nil, nil
	}
	kp, err := f.cfg.KubeletCA.Issue(pki.Request{CommonName: n.name, DNSNames: []string{n.name}, Server: true})
	if err != nil {
		return nil, fmt.Errorf("node %s: issuing its hostname-only certificate: %w", n.name, err)
	}
	return &tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key}, nil
}

// refusesToken answers r as a kubelet without webhook token
// authentication does, and reports whether it did.
func (n *node) refusesToken(w http.ResponseWriter) bool {
	n.mu.Lock()
	m := n.mode
	n.mu.Unlock()
	if m != ModeRefuseToken {
		return false
	}
	// The kubelet's authentication filter writes exactly this.
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
	return true
}
