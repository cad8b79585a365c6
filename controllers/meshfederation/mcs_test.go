package meshfederation_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// exportConds returns the conditions of ServiceExport shop/<name> in c.
func exportConds(t *testing.T, c client.Client, name string) []metav1.Condition {
	t.Helper()
	se := &mcsv1beta1.ServiceExport{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: name}, se); err != nil {
		t.Fatal(err)
	}
	return se.Status.Conditions
}

func condIs(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason, msg string) error {
	c := apimeta.FindStatusCondition(conds, typ)
	if c == nil || c.Status != status || c.Reason != reason || (msg != "" && c.Message != msg) {
		return testenv.Errorf("%s %+v, want %s %s %q", typ, c, status, reason, msg)
	}
	return nil
}

// TestServiceExportConditions exports shop/cart from east and, later and
// with another port, from west (three Linkerd members on real API
// servers): both ServiceExports get Valid=True and Conflict=True
// (PortConflict), every ServiceImport keeps the oldest export's port, the
// federation names the conflict; a ServiceExport without a Service is
// Valid=False (NoService); making the Services alike clears the conflict;
// a no-op reconcile writes nothing.
func TestServiceExportConditions(t *testing.T) {
	e := setupMarks(t, meshv1alpha1.ProviderLinkerd, false)
	ctx := context.Background()
	east, west, local := e.members["east"], e.members["west"], e.local()
	mustCreate(t, east, cartService(nil, nil), &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}})
	time.Sleep(1100 * time.Millisecond) // creationTimestamps have second precision
	westSvc := cartService(nil, nil)
	westSvc.Spec.Ports[0].Port = 9090
	mustCreate(t, west, westSvc, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}})
	mustCreate(t, local, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ghost"}})
	mustCreate(t, local, marksFederation(meshv1alpha1.ProviderLinkerd, false))
	const conflict = "the exports conflict (PortConflict): west exports ports [9090/TCP], and east (the oldest export) ports [8080/TCP], type ClusterSetIP; " +
		"every ServiceImport takes east's: make the Services alike in every member"

	t.Run("both exports conflict; the imports follow the oldest", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "conditions", func() error {
			for name, c := range map[string]client.Client{"east": east, "west": west} {
				conds := exportConds(t, c, "cart")
				if err := condIs(conds, "Valid", metav1.ConditionTrue, "Valid", "Service shop/cart exists and is exported"); err != nil {
					return testenv.Errorf("%s: %v", name, err)
				}
				if err := condIs(conds, "Conflict", metav1.ConditionTrue, "PortConflict", conflict); err != nil {
					return testenv.Errorf("%s: %v", name, err)
				}
			}
			return condIs(exportConds(t, local, "ghost"), "Valid", metav1.ConditionFalse, "NoService", "ServiceExport shop/ghost in local exports no Service (not found)")
		})
		for name, c := range e.members {
			si := &mcsv1beta1.ServiceImport{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, si); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(si.Spec.Ports) != 1 || si.Spec.Ports[0].Port != 8080 {
				t.Fatalf("%s: ServiceImport ports %+v", name, si.Spec.Ports)
			}
		}
		testenv.Eventually(t, 20*time.Second, "federation names the conflict", func() error {
			es := exportStatusOf(e.fed(t), "shop/cart")
			if es == nil || es.Ready || es.Message == "" || es.Message[:len(conflict)] != conflict {
				return testenv.Errorf("export %+v", es)
			}
			c := apimeta.FindStatusCondition(e.fed(t).Status.Conditions, meshv1alpha1.ServicesExportedCondition)
			if c == nil || c.Status != metav1.ConditionFalse {
				return testenv.Errorf("ServicesExported %+v", c)
			}
			return nil
		})
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		if log := e.noopWrites(t); len(log) != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", len(log), log)
		}
	})

	t.Run("alike Services clear the conflict", func(t *testing.T) {
		svc := &corev1.Service{}
		if err := west.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, svc); err != nil {
			t.Fatal(err)
		}
		svc.Spec.Ports[0].Port = 8080
		if err := west.Update(ctx, svc); err != nil {
			t.Fatal(err)
		}
		e.poke(t, "poke-alike")
		testenv.Eventually(t, 30*time.Second, "NoConflicts", func() error {
			for name, c := range map[string]client.Client{"east": east, "west": west} {
				if err := condIs(exportConds(t, c, "cart"), "Conflict", metav1.ConditionFalse, "NoConflicts", ""); err != nil {
					return testenv.Errorf("%s: %v", name, err)
				}
			}
			return nil
		})
	})
}
