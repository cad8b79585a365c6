package meshfederation

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
)

// linkExtension drops a reachable member whose mesh links peers through an
// extension (mesh.PeerLinks) that is not installed there — unless a
// MeshInstall can install it (mesh.ExtensionInstaller): then the member
// waits for it — and reads the member's gateway Service, which its peers'
// links copy.
func (r *Reconciler) linkExtension(ctx context.Context, s *svcMember) {
	pl, ok := s.sf.(mesh.PeerLinks)
	if !ok {
		return
	}
	gvk, missing := pl.LinkExtension(s.fm)
	_, err := s.m.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil && !apimeta.IsNoMatchError(err) {
		return
	}
	served := err == nil
	if ei, ok := s.sf.(mesh.ExtensionInstaller); ok {
		if installs, ok := s.meshInstalls(ctx); ok {
			s.meshInstall = ei.ExtensionInstall(s.fm, installs, served)
		}
		if !served && s.meshInstall != nil {
			s.extensionPending = ei.ExtensionPending(s.fm, s.meshInstall)
			return
		}
	}
	if !served {
		s.sf, s.notFederating = nil, missing
		return
	}
	ns, name, ok := s.sf.FederationGateway(s.fm)
	if !ok {
		return
	}
	svc := &corev1.Service{}
	if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err == nil {
		s.gatewaySvc = svc
	}
}

// peerLinks returns the objects beyond the credential that member s holds
// for peer p (mesh.PeerLinks) and why the pair is not linked. When the
// credential or the link cannot be had from what p shows now (p does not
// answer, its gateway has no address yet), s keeps the link objects it
// already holds, so a peer's outage never removes a link.
func (r *Reconciler) peerLinks(ctx context.Context, fed *meshv1alpha1.MeshFederation, s, p *svcMember, kc []byte, why string) ([]client.Object, string) {
	pl, ok := s.sf.(mesh.PeerLinks)
	if !ok || kc == nil || p.sf == nil || p.m.spec.Provider != s.m.spec.Provider {
		return nil, why
	}
	objs, linkWhy := pl.PeerLinks(s.fm, p.fm, kc, p.gatewaySvc)
	if why == "" && linkWhy == "" {
		return objs, ""
	}
	if why == "" {
		why = linkWhy
	}
	return r.heldObjects(ctx, fed, s, objs), why
}

// heldObjects returns, of the named objects, those member s holds for the
// federation, as they are (spec and data, without status or metadata the
// server set), to be applied again unchanged.
func (r *Reconciler) heldObjects(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, objs []client.Object) []client.Object {
	var out []client.Object
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, r.Local.Scheme())
		if err != nil {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(gvk)
		if err := s.m.client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil || !owned(live, fed.Name) {
			continue
		}
		held := &unstructured.Unstructured{Object: map[string]any{}}
		for k, v := range live.Object {
			if k != "metadata" && k != "status" {
				held.Object[k] = v
			}
		}
		held.SetGroupVersionKind(gvk)
		held.SetNamespace(live.GetNamespace())
		held.SetName(live.GetName())
		held.SetLabels(live.GetLabels())
		ann := live.GetAnnotations()
		delete(ann, apply.HashAnnotation)
		held.SetAnnotations(ann)
		out = append(out, held)
	}
	return out
}
