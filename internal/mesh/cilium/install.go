package cilium

import (
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// ChartVersion returns the version without a leading v.
func (*Provider) ChartVersion(v string) string { return strings.TrimPrefix(v, "v") }

// Values turns on the service-mesh features Meshplane uses: Envoy for L7,
// Gateway API with GAMMA (which needs kube-proxy replacement), and
// SPIRE-based mutual authentication and transparent encryption when asked,
// and ClusterMesh when spec.cilium.clusterMesh is set (by a MeshFederation).
func (*Provider) Values(mi *meshv1alpha1.MeshInstall, _ mesh.Chart, _ mesh.InstallContext) map[string]any {
	cs := mi.Spec.Cilium
	on := func(p *bool) bool { return p == nil || *p }
	envoy, gw, kpr, mutual := true, true, true, false
	if cs != nil {
		envoy, gw, kpr, mutual = on(cs.Envoy), on(cs.GatewayAPI), on(cs.KubeProxyReplacement), cs.MutualAuth
	}
	v := map[string]any{
		"kubeProxyReplacement": kpr,
		"envoy":                map[string]any{"enabled": envoy},
		"gatewayAPI":           map[string]any{"enabled": gw},
		"operator":             map[string]any{"replicas": 1},
	}
	if kpr {
		// Cilium replaces kube-proxy, so it must reach the API server
		// without a Service; "auto" reads it from kube-public/cluster-info.
		v["k8sServiceHost"] = "auto"
	}
	if mutual {
		v["authentication"] = map[string]any{
			"enabled": true,
			"mutual": map[string]any{"spire": map[string]any{
				"enabled": true,
				"install": map[string]any{"enabled": true},
			}},
		}
	}
	if cs != nil && cs.Encryption != nil {
		v["encryption"] = encryptionValues(cs.Encryption)
	}
	if cs != nil && cs.ClusterMesh != nil {
		v["cluster"], v["clustermesh"] = clusterMeshValues(cs.ClusterMesh)
	}
	return v
}

// encryptionValues are the chart's transparent-encryption values: the
// type, and for IPsec the Secret (in Cilium's namespace) and key holding
// the keys.
func encryptionValues(e *meshv1alpha1.CiliumEncryption) map[string]any {
	if e.Type != meshv1alpha1.CiliumEncryptionIPsec {
		return map[string]any{"enabled": true, "type": "wireguard"}
	}
	ipsec := map[string]any{}
	if ref := e.IPsecKeySecretRef; ref != nil {
		ipsec["secretName"] = ref.Name
		ipsec["keyFile"] = "keys"
		if ref.Key != "" {
			ipsec["keyFile"] = ref.Key
		}
	}
	return map[string]any{"enabled": true, "type": "ipsec", "ipsec": ipsec}
}

// Enforced returns nothing: every Cilium value may be overridden.
func (*Provider) Enforced(*meshv1alpha1.MeshInstall, mesh.Chart, mesh.InstallContext) map[string]any {
	return nil
}
