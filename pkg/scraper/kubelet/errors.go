package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Reason classifies a scrape failure. The set is fixed and small.
type Reason string

const (
	ReasonNoAddress  Reason = "no_address"
	ReasonConnection Reason = "connection"
	ReasonTimeout    Reason = "timeout"
	ReasonTLS        Reason = "tls"
	ReasonHTTPStatus Reason = "http_status"
	// ReasonRedirect: the kubelet answered with a redirect, which is never
	// followed, so that credentials go to the node's address only.
	ReasonRedirect Reason = "redirect"
	ReasonTooLarge Reason = "too_large"
	ReasonDecode   Reason = "decode"
	// ReasonNoDecodeSlot: the kubelet answered within the timeout, but
	// no decode slot (see package gate) came free before the request's
	// deadline. The server is short of slots (--kubelet-max-concurrency),
	// not the node at fault.
	ReasonNoDecodeSlot Reason = "no_decode_slot"
	// ReasonOther is what ReasonOf returns for an error not from this package.
	ReasonOther Reason = "other"
)

// ScrapeError is a failed scrape of one node.
type ScrapeError struct {
	Node    string
	Address string // host:port, empty when none could be chosen
	// Endpoint is the path asked for; empty when both endpoints were
	// asked (auto mode) and both failed, and Err names each.
	Endpoint string
	Reason   Reason
	// Status is the HTTP status for ReasonHTTPStatus, else 0.
	Status int
	Err    error
}

func (e *ScrapeError) Error() string {
	where := e.Address
	if where == "" {
		where = "no address"
	}
	if e.Endpoint == "" {
		return fmt.Sprintf("scraping node %q at %s: %v", e.Node, where, e.Err)
	}
	return fmt.Sprintf("scraping node %q at %s %s: %v", e.Node, where, e.Endpoint, e.Err)
}

func (e *ScrapeError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of err, ReasonOther when err is not a
// *ScrapeError.
func ReasonOf(err error) Reason {
	var se *ScrapeError
	if errors.As(err, &se) {
		return se.Reason
	}
	return ReasonOther
}

// errTooLarge is returned by the body reader past the size limit.
var errTooLarge = errors.New("response body exceeds the size limit")

// transportReason classifies an error from the HTTP round trip.
func transportReason(err error) Reason {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		recordHdr   tls.RecordHeaderError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &unknownAuth), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &recordHdr), errors.Is(err, http.ErrSchemeMismatch):
		return ReasonTLS
	case errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	}
	return ReasonConnection
}

// kubeletTLSFixes are the two ways out of a kubelet certificate this
// server refuses, named after every x509 cause.
const kubeletTLSFixes = "fix: have the kubelets serve certificates for their addresses signed by the cluster's CA " +
	"(serverTLSBootstrap: true in the KubeletConfiguration, then approve their CSRs) and give that CA with --kubelet-certificate-authority; " +
	"or, on a test cluster only, skip verification with --kubelet-insecure-tls"

// tlsCause says in words why a TLS connection to the kubelet at addr
// (host:port) failed and what to do; "" when err is no TLS failure it
// knows.
func tlsCause(err error, addr string) string {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		recordHdr   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownAuth):
		return "the kubelet's serving certificate is signed by an authority not trusted here; " + kubeletTLSFixes
	case errors.As(err, &hostname):
		return hostnameCause(hostname, addr) + "; " + kubeletTLSFixes +
			"; or reach the kubelets at an address type their certificates name with --kubelet-preferred-address-types"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && signerOutOfDate(err, invalid.Cert):
		ca := invalid.Cert
		when := "expired at " + ca.NotAfter.UTC().Format(time.RFC3339)
		if strings.Contains(invalid.Detail, "is before") {
			when = "is not valid before " + ca.NotBefore.UTC().Format(time.RFC3339)
		}
		return fmt.Sprintf("the CA %q that the kubelet's serving certificate chains to %s (valid %s to %s), so every certificate it signed is refused; fix: "+
			"renew that CA, give the new one with --kubelet-certificate-authority (or in the cluster CA bundle) and re-issue the kubelets' serving certificates; check the clocks of this server", ca.Subject.String(), when,
			ca.NotBefore.UTC().Format(time.RFC3339), ca.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the kubelet's serving certificate has expired or is not yet valid: check its rotation and the clocks of the node and this server; " + kubeletTLSFixes
	case errors.As(err, &invalid):
		return "the kubelet's serving certificate is not valid for serving; " + kubeletTLSFixes
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &recordHdr):
		return "the kubelet did not answer with TLS: is this its read-only (plain HTTP) port? check --kubelet-port"
	}
	return ""
}

// signerOutOfDate says whether c, the certificate an x509 date check
// refused in err, is not the kubelet's own serving certificate but a CA of
// its chain (the one the server trusts, or an intermediate): the leaf is
// the first certificate the kubelet presented, when err tells it, else c
// is taken for a CA when it is marked as one.
func signerOutOfDate(err error, c *x509.Certificate) bool {
	if c == nil {
		return false
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 {
		return !verify.UnverifiedCertificates[0].Equal(c)
	}
	return c.IsCA
}

// hostnameCause says which address was asked and which the certificate
// names: the commonest refusal is a kubelet's self-signed certificate,
// naming only its hostname, reached at an IP address.
func hostnameCause(h x509.HostnameError, addr string) string {
	host := h.Host
	if host == "" {
		host = addr
	}
	var sans []string
	if h.Certificate != nil {
		for _, d := range h.Certificate.DNSNames {
			sans = append(sans, "DNS:"+d)
		}
		for _, ip := range h.Certificate.IPAddresses {
			sans = append(sans, "IP:"+ip.String())
		}
	}
	names := "none"
	const most = 8 // a message, not a dump of a certificate
	if len(sans) > most {
		names = fmt.Sprintf("%s and %d more", strings.Join(sans[:most], ", "), len(sans)-most)
	} else if len(sans) > 0 {
		names = strings.Join(sans, ", ")
	}
	if net.ParseIP(host) != nil {
		return fmt.Sprintf("the kubelet's serving certificate has no IP SAN for the address asked, %s (its SANs: %s)", host, names)
	}
	return fmt.Sprintf("the kubelet's serving certificate does not name the host asked, %s (its SANs: %s)", host, names)
}
