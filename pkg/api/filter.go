package api

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// The fields a metrics list can be selected on.
const (
	fieldName      = "metadata.name"
	fieldNamespace = "metadata.namespace"
)

// selectors returns the label and field selectors of a list request,
// Everything for what is unset. A field selector on any field but name and
// namespace is a BadRequest naming the field.
func selectors(opts *metainternalversion.ListOptions) (labels.Selector, fields.Selector, error) {
	ls, fs := labels.Everything(), fields.Everything()
	if opts == nil {
		return ls, fs, nil
	}
	if opts.LabelSelector != nil {
		ls = opts.LabelSelector
	}
	if opts.FieldSelector != nil {
		for _, r := range opts.FieldSelector.Requirements() {
			if r.Field != fieldName && r.Field != fieldNamespace {
				return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("field selector %q is not supported: only %s and %s can be selected on", r.Field, fieldName, fieldNamespace))
			}
		}
		fs = opts.FieldSelector
	}
	return ls, fs, nil
}

// matchFields applies a field selector to an object's name and namespace.
func matchFields(fs fields.Selector, namespace, name string) bool {
	if fs.Empty() {
		return true
	}
	return fs.Matches(fields.Set{fieldName: name, fieldNamespace: namespace})
}
