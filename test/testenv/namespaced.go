package testenv

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// AnnotatedNamespace is Namespace with annotations too (a namespace
// enrolled by annotation, such as linkerd.io/inject), and returns its name.
func AnnotatedNamespace(t testing.TB, c client.Client, labels, annotations map[string]string) string {
	t.Helper()
	name := Namespace(t, c, labels)
	if len(annotations) == 0 {
		return name
	}
	ns := &corev1.Namespace{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: name}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Annotations = annotations
	if err := c.Update(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

// Conditions renders a status's conditions as "Type=Status/Reason ...", in
// order, for the table tests of the kinds' status functions.
func Conditions(st *meshv1alpha1.CommonStatus) string {
	parts := make([]string, 0, len(st.Conditions))
	for _, c := range st.Conditions {
		parts = append(parts, c.Type+"="+string(c.Status)+"/"+c.Reason)
	}
	return strings.Join(parts, " ")
}
