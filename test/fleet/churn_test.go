package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// runFleet runs a fleet of nodes against a fake API on loopback
// addresses 127.<base>.x.y.
func runFleet(t *testing.T, nodes, base int) (*Fleet, *fake.Clientset, *pki.CA) {
	t.Helper()
	ca, err := pki.NewCA("fleet-test-kubelet-ca")
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	f, err := New(Config{Client: client, Nodes: nodes, Prefix: "t", KubeletCA: ca, AddressBase: base, Port: 10250})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return f, client, ca
}

// scrape GETs the summary of the kubelet at ip, trusting only ca and
// checking the certificate names ip.
func scrape(ca *pki.CA, ip net.IP) (*statsapi.Summary, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + net.JoinHostPort(ip.String(), "10250") + "/stats/summary?only_cpu_and_memory=true")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s statsapi.Summary
	return &s, json.NewDecoder(resp.Body).Decode(&s)
}

func internalIP(t *testing.T, n *corev1.Node) net.IP {
	t.Helper()
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return net.ParseIP(a.Address)
		}
	}
	t.Fatalf("node %s has no InternalIP", n.Name)
	return nil
}

func TestDeleteAndAddNode(t *testing.T) {
	f, client, ca := runFleet(t, 3, 211)
	ctx := context.Background()
	name := f.NodeNames()[1]
	before, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldIP := internalIP(t, before)
	if s, err := scrape(ca, oldIP); err != nil || s.Node.NodeName != name {
		t.Fatalf("before: %v %v", s, err)
	}

	if err := f.DeleteNode(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node object after DeleteNode: %v", err)
	}
	if _, err := scrape(ca, oldIP); err == nil {
		t.Error("the deleted node's kubelet still answers")
	}
	if err := f.DeleteNode(ctx, name); err == nil {
		t.Error("deleting twice succeeded")
	}

	newIP, err := f.AddNode(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	after, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := internalIP(t, after); !got.Equal(newIP) || got.Equal(oldIP) {
		t.Errorf("re-added node at %v (returned %v), was %v: want a new address", got, newIP, oldIP)
	}
	for _, other := range f.NodeNames() {
		if o := f.byName[other]; other != name && o.addr().Equal(newIP) {
			t.Errorf("new address %v is node %s's", newIP, other)
		}
	}
	if s, err := scrape(ca, newIP); err != nil || s.Node.NodeName != name {
		t.Fatalf("after: %v %v", s, err)
	}
	if _, err := scrape(ca, oldIP); err == nil {
		t.Error("the old address answers again")
	}
	if _, err := f.AddNode(ctx, name); err == nil {
		t.Error("adding a node that is not deleted succeeded")
	}
}

// TestNodeObjectsMatchTheirKubelets checks that each Node's capacity and
// allocatable are its shape's and that its kubelet's availableBytes is
// that capacity less the working set, so kubectl top percentages agree.
func TestNodeObjectsMatchTheirKubelets(t *testing.T) {
	f, client, ca := runFleet(t, 6, 212)
	ctx := context.Background()
	large := 0
	for i, name := range f.NodeNames() {
		obj, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		shape := DefaultShape(i)
		if shape.Cores >= 24 {
			large++
		}
		wantCPU := resource.MustParse(strconv.FormatInt(shape.Cores, 10))
		wantMem := *resource.NewQuantity(shape.Memory, resource.BinarySI)
		wantAlloc := *resource.NewQuantity(shape.Memory-100<<20, resource.BinarySI)
		if c := obj.Status.Capacity; c.Cpu().Cmp(wantCPU) != 0 || c.Memory().Cmp(wantMem) != 0 {
			t.Errorf("%s capacity %v %v, want %v %v", name, c.Cpu(), c.Memory(), &wantCPU, &wantMem)
		}
		if a := obj.Status.Allocatable; a.Cpu().Cmp(wantCPU) != 0 || a.Memory().Cmp(wantAlloc) != 0 {
			t.Errorf("%s allocatable %v %v, want %v %v", name, a.Cpu(), a.Memory(), &wantCPU, &wantAlloc)
		}
		s, err := scrape(ca, internalIP(t, obj))
		if err != nil {
			t.Fatal(err)
		}
		ws, avail := *s.Node.Memory.WorkingSetBytes, *s.Node.Memory.AvailableBytes
		if ws+avail != uint64(shape.Memory) || ws < uint64(shape.SystemMemory) {
			t.Errorf("%s working set %d + available %d, want capacity %d", name, ws, avail, shape.Memory)
		}
	}
	if large != 2 {
		t.Errorf("%d large nodes in 6, want every third", large)
	}
}
