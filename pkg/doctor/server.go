package doctor

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Server is what the doctor knows of the metrics-server installation.
type Server struct {
	// Namespace and Service locate the Service the APIServices route to.
	Namespace, Service string
	// ServiceAccount is the identity the server runs as ("namespace/name").
	ServiceAccount string
	// Deployment is the name of the server's Deployment; empty when none
	// was found (the server runs outside the cluster, or elsewhere).
	Deployment string
	// Args are the server container's arguments from the Deployment; nil
	// when Deployment is empty.
	Args []string
}

// FindServer looks for the Deployment behind Service namespace/service: the
// Deployment whose pod template the Service's selector matches, else the
// Deployment of the Service's name. Its ServiceAccount (namespace/name)
// replaces serviceAccount unless serviceAccountSet; its container named
// metrics-server (else the first) gives Args. Not finding one is no error:
// Deployment stays empty. An error is returned only when the API refuses.
func FindServer(ctx context.Context, client kubernetes.Interface, namespace, service, serviceAccount string, serviceAccountSet bool) (Server, error) {
	s := Server{Namespace: namespace, Service: service, ServiceAccount: serviceAccount}
	var dep *appsv1.Deployment
	svc, err := client.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	switch {
	case err == nil && len(svc.Spec.Selector) > 0:
		list, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{Limit: 500})
		if err != nil {
			return s, fmt.Errorf("listing deployments in %s to find the one behind service %s: %w", namespace, service, err)
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for i := range list.Items {
			if sel.Matches(labels.Set(list.Items[i].Spec.Template.Labels)) {
				dep = &list.Items[i]
				break
			}
		}
	case err != nil && !apierrors.IsNotFound(err):
		return s, fmt.Errorf("getting service %s/%s: %w", namespace, service, err)
	}
	if dep == nil {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, service, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return s, fmt.Errorf("getting deployment %s/%s: %w", namespace, service, err)
		}
		if err == nil {
			dep = d
		}
	}
	if dep == nil {
		return s, nil
	}
	s.Deployment = dep.Name
	if !serviceAccountSet {
		sa := dep.Spec.Template.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		s.ServiceAccount = dep.Namespace + "/" + sa
	}
	cs := dep.Spec.Template.Spec.Containers
	for _, c := range cs {
		if c.Name == "metrics-server" {
			s.Args = append(append([]string{}, c.Command...), c.Args...)
			return s, nil
		}
	}
	if len(cs) > 0 {
		s.Args = append(append([]string{}, cs[0].Command...), cs[0].Args...)
	}
	return s, nil
}
