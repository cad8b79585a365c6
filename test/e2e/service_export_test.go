package e2e

import (
	"strings"
	"testing"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/harness"
)

// serviceExportAcrossClusters is the service export step of
// TestServiceFederationTwoClusters: shop/ratings (deployed in both
// clusters, its pods run by kwok) is exported from east with a
// ServiceExport of the Multi-Cluster Services API and failover LocalFirst
// is asked once on the federation. Both clusters then hold its
// ServiceImport (east's ports, type ClusterSetIP) and the failover
// DestinationRule, and the federation's status says east exports it, both
// import it, it is reachable (east has ready endpoints, west reads east)
// and through which gateway address; the scope and topology checks name
// the istiod values to set, since the MeshInstalls carry none.
func serviceExportAcrossClusters(t *testing.T, clients map[string]client.Client) {
	t.Helper()
	start := time.Now()
	wc, ec := clients["west"], clients["east"]
	if err := ec.Create(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings"}}); err != nil {
		t.Fatal(err)
	}
	// East is a remote member (not watched): asking for failover wakes the
	// federation, as any change of it does.
	harness.Eventually(t, 10*time.Second, "failover LocalFirst set", func() error {
		f := &meshv1alpha1.MeshFederation{}
		if err := wc.Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			return err
		}
		f.Spec.Services.Failover = meshv1alpha1.FailoverLocalFirst
		return wc.Update(ctx, f)
	})
	for name, c := range clients {
		harness.Eventually(t, 30*time.Second, name+" imports shop/ratings", func() error {
			si := &mcsv1beta1.ServiceImport{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "ratings"}, si); err != nil {
				return err
			}
			if si.Spec.Type != mcsv1beta1.ClusterSetIP || len(si.Spec.Ports) != 1 || si.Spec.Ports[0].Port != 9080 ||
				len(si.Status.Clusters) != 1 || si.Status.Clusters[0].Cluster != "east" {
				return harness.Errorf("%s: ServiceImport %+v", name, si)
			}
			dr := &istionetworking.DestinationRule{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "ratings-meshplane-failover"}, dr); err != nil {
				return err
			}
			if dr.Spec.Host != "ratings.shop.svc.cluster.local" || !dr.Spec.GetTrafficPolicy().GetLoadBalancer().GetLocalityLbSetting().GetEnabled().GetValue() {
				return harness.Errorf("%s: failover rule host %s", name, dr.Spec.Host)
			}
			return nil
		})
	}
	harness.Eventually(t, 30*time.Second, "export status", func() error {
		f := &meshv1alpha1.MeshFederation{}
		if err := wc.Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			return err
		}
		if len(f.Status.Exports) != 1 {
			return harness.Errorf("exports %+v", f.Status.Exports)
		}
		es := f.Status.Exports[0]
		if es.Namespace+"/"+es.Name != "shop/ratings" || strings.Join(es.ExportedBy, ",") != "east" || strings.Join(es.ImportedBy, ",") != "west,east" ||
			!es.Reachable || strings.Join(es.GatewayAddresses, ",") != "east=127.96.2.2" {
			return harness.Errorf("export %+v", es)
		}
		c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesExportedCondition)
		if c == nil || c.Reason != meshv1alpha1.ScopeNotEnforcedReason ||
			!strings.Contains(c.Message, `set MeshInstall istio spec.components[chart=istiod].values to {"meshConfig":{"serviceSettings":[{"hosts":["*"],"settings":{"clusterLocal":true}},{"hosts":["ratings.shop.svc.cluster.local"],"settings":{"clusterLocal":false}}]}}`) {
			return harness.Errorf("ServicesExported %+v", c)
		}
		for _, cs := range f.Status.Clusters {
			tc := apimeta.FindStatusCondition(cs.Conditions, meshv1alpha1.TopologyConfiguredCondition)
			if tc == nil || tc.Status != metav1.ConditionFalse || !strings.Contains(tc.Message, "set spec.istio {meshID: mesh1, clusterName: "+cs.Name+", network: "+cs.Name+"}") {
				return harness.Errorf("%s TopologyConfigured %+v", cs.Name, tc)
			}
		}
		return nil
	})
	t.Logf("service export on both clusters after %s", time.Since(start).Round(10*time.Millisecond))
}
