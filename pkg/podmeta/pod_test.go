package podmeta

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

func TestPodIsAnObjectToClientGo(t *testing.T) {
	p := &Pod{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}}
	acc, err := meta.Accessor(p)
	if err != nil {
		t.Fatal(err)
	}
	if acc.GetNamespace() != "shop" || acc.GetName() != "web-1" || acc.GetLabels()["app"] != "web" {
		t.Errorf("accessor reads %s/%s %v", acc.GetNamespace(), acc.GetName(), acc.GetLabels())
	}
	key, err := cache.MetaNamespaceKeyFunc(p)
	if err != nil || key != "shop/web-1" {
		t.Errorf("key %q (%v), want shop/web-1", key, err)
	}
	// Fields a Pod does not keep are dropped, not half-kept.
	acc.SetUID("u1")
	acc.SetAnnotations(map[string]string{"a": "b"})
	if acc.GetUID() != "" || acc.GetAnnotations() != nil {
		t.Errorf("a Pod kept uid %q and annotations %v", acc.GetUID(), acc.GetAnnotations())
	}
}

func TestDeepCopyOwnsItsLabels(t *testing.T) {
	p := &Pod{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}}
	c := p.DeepCopyObject().(*Pod)
	c.Labels["app"] = "changed"
	c.Name = "other"
	if p.Labels["app"] != "web" || p.Name != "web-1" {
		t.Errorf("changing the copy changed the original: %+v", p)
	}
}
