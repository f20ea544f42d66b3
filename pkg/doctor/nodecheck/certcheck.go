package nodecheck

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// problem is one reason the server would refuse a kubelet's certificate.
type problem struct {
	// cause holds for every node with this problem; message names this
	// node's certificate (dates, SANs, issuer).
	cause, message, fix string
}

// verdict is what judgeCert finds.
type verdict struct {
	problems []problem
	// ok describes a certificate without problems.
	ok string
	// detail describes the certificate: subject, issuer, SANs, validity.
	detail string
}

func (v verdict) message() string {
	msgs := make([]string, len(v.problems))
	for i, p := range v.problems {
		msgs[i] = p.message
	}
	return strings.Join(msgs, "; ")
}

// judgeCert names every reason the server would refuse the kubelet's
// certificate chain (certs, leaf first) served at addr (host:port), at
// local time now: its validity dates, whether it names host, and, when a CA
// is known, whether that CA verifies it. The host name and authority
// problems are worded by the server's own kubelet client.
func judgeCert(certs []*x509.Certificate, host, addr string, now time.Time, t trust) verdict {
	if len(certs) == 0 {
		return verdict{problems: []problem{{cause: "the kubelet presented no certificate", message: "the kubelet presented no certificate", fix: "check what answers at " + addr}}}
	}
	leaf := certs[0]
	v := verdict{detail: fmt.Sprintf("subject %q, issuer %q, SANs: %s, valid %s to %s",
		leaf.Subject.String(), leaf.Issuer.String(), sans(leaf), stamp(leaf.NotBefore), stamp(leaf.NotAfter))}
	switch {
	case now.After(leaf.NotAfter):
		v.problems = append(v.problems, problem{
			cause:   "the kubelet's serving certificate has expired",
			message: fmt.Sprintf("the kubelet's serving certificate expired at %s, %s ago by this machine's clock", stamp(leaf.NotAfter), span(now.Sub(leaf.NotAfter))),
			fix:     "renew it: a kubelet with serverTLSBootstrap: true (and rotateCertificates) renews its own once its CSR is approved (kubectl get csr); check the clocks of the node and of this machine",
		})
	case now.Before(leaf.NotBefore):
		v.problems = append(v.problems, problem{
			cause:   "the kubelet's serving certificate is not valid yet",
			message: fmt.Sprintf("the kubelet's serving certificate is not valid before %s, %s from now by this machine's clock", stamp(leaf.NotBefore), span(leaf.NotBefore.Sub(now))),
			fix:     "sync the clocks (NTP) of the node, of the machine that issued the certificate and of this machine",
		})
	}
	if err := leaf.VerifyHostname(host); err != nil {
		cause, fix := kubelet.ExplainTLS(err, addr)
		if cause == "" {
			cause = err.Error()
		}
		generic := "the kubelet's serving certificate does not name the address asked"
		if strings.Contains(cause, "no IP SAN") {
			generic = "the kubelet's serving certificate has no IP SAN for the address asked"
		}
		v.problems = append(v.problems, problem{cause: generic, message: cause, fix: fix})
	}
	if t.pool != nil {
		if p, ok := chainProblem(certs, addr, now, t); !ok {
			v.problems = append(v.problems, p)
		}
	}
	if len(v.problems) == 0 {
		v.ok = fmt.Sprintf("the kubelet's serving certificate names %s (SANs: %s), is valid until %s", host, sans(leaf), stamp(leaf.NotAfter))
		if t.pool != nil {
			v.ok += " and is signed by " + t.source
		}
	}
	return v
}

// chainProblem verifies the chain against t's CA at now, as the server
// does. When the leaf itself is out of its dates (judged apart), the
// authority is verified at the middle of the leaf's life, so that the
// dates do not hide it, and the CAs of the chain are then judged at now
// on their own: an expired CA is named, never blamed on the leaf.
func chainProblem(certs []*x509.Certificate, addr string, now time.Time, t trust) (problem, bool) {
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leafInDate := !now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter)
	at := now
	if !leafInDate {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         t.pool,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		for _, chain := range chains {
			for _, ca := range chain[1:] {
				if now.Before(ca.NotBefore) || now.After(ca.NotAfter) {
					return caOutOfDate(ca, leaf, now, t), false
				}
			}
		}
		return problem{}, true
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil && !invalid.Cert.Equal(leaf) {
		return caOutOfDate(invalid.Cert, leaf, now, t), false
	}
	_, fix := kubelet.ExplainTLS(err, addr)
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		own := ""
		if selfSigned(leaf) {
			own = " (a self-signed certificate: the kubelet made it itself, as it does without serverTLSBootstrap)"
		}
		return problem{
			cause:   "the kubelet's serving certificate is signed by an authority the server does not trust",
			message: fmt.Sprintf("the kubelet's serving certificate is issued by %q%s, which %s does not verify", leaf.Issuer.String(), own, t.source),
			fix:     fix,
		}, false
	}
	cause, _ := kubelet.ExplainTLS(err, addr)
	if cause == "" {
		cause = "the kubelet's serving certificate does not verify: " + err.Error()
	}
	return problem{cause: cause, message: cause, fix: fix}, false
}

// caOutOfDate is the problem of a CA of the kubelet's chain that is not
// valid at now (by this machine's clock).
func caOutOfDate(ca, leaf *x509.Certificate, now time.Time, t trust) problem {
	state := fmt.Sprintf("expired at %s, %s ago by this machine's clock", stamp(ca.NotAfter), span(now.Sub(ca.NotAfter)))
	if now.Before(ca.NotBefore) {
		state = fmt.Sprintf("is not valid before %s, %s from now by this machine's clock", stamp(ca.NotBefore), span(ca.NotBefore.Sub(now)))
	}
	return problem{
		cause: fmt.Sprintf("the kubelet CA %q is out of its validity dates", ca.Subject.String()),
		message: fmt.Sprintf("the kubelet CA %q (of %s) %s; it signs the kubelet's serving certificate, so the server refuses every certificate it signed (the serving certificate's own dates: %s to %s)",
			ca.Subject.String(), t.source, state, stamp(leaf.NotBefore), stamp(leaf.NotAfter)),
		fix: "renew the kubelet CA, give the new one to the server (--kubelet-certificate-authority, or the cluster CA bundle) and re-issue the kubelets' serving certificates with it (serverTLSBootstrap: true, then approve their CSRs); if the CA should still be valid, check the clocks of this machine and of the server's node",
	}
}

// selfSigned says whether c signed itself.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// sans lists c's subject alternative names, at most eight.
func sans(c *x509.Certificate) string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	const most = 8
	switch {
	case len(out) == 0:
		return "none"
	case len(out) > most:
		return fmt.Sprintf("%s and %d more", strings.Join(out[:most], ", "), len(out)-most)
	}
	return strings.Join(out, ", ")
}

// stamp writes an instant for a message: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// span writes a duration in its two largest units: "3d4h", "2h5m", "41s".
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
