package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
)

// rendering is what render and diff print for one input object on one mesh.
type rendering struct {
	kind, namespace, name string
	provider              meshv1alpha1.Provider
	objects               []*unstructured.Unstructured
	// refused is the UnsupportedFeature (or other) refusal.
	refused error
}

func (r rendering) title() string {
	return fmt.Sprintf("%s %s/%s on %s", r.kind, r.namespace, r.name, r.provider)
}

type renderOptions struct {
	file    string
	mesh    string
	profile string
}

func (o *renderOptions) bind(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.file, "filename", "f", "", "YAML file with TrafficSplit, ZeroTrustPolicy, Canary, TelemetryPolicy, ResiliencePolicy, EgressPolicy, IngressGateway and ProxyPolicy objects (- for stdin)")
	cmd.Flags().StringVar(&o.mesh, "mesh", "", "Istio, Linkerd or Cilium (default: the object's spec.provider, else every mesh)")
	cmd.Flags().StringVar(&o.profile, "profile", "", "the MeshInstall profile the namespace runs (Sidecar or Ambient); shown in the output")
	_ = cmd.MarkFlagRequired("filename")
}

func (c *cli) renderCommand() *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render -f FILE [--mesh M] [--profile ambient]",
		Short: "Print what Meshplane would write for each TrafficSplit, ZeroTrustPolicy, Canary, TelemetryPolicy, ResiliencePolicy, EgressPolicy, IngressGateway and ProxyPolicy, offline",
		Long: `render runs the same translation code the controllers run (the providers'
translators and the applier's labels, owner reference and hash annotation) on
the objects in FILE, without a cluster, and prints the outputs as YAML, one
document per output, or the refusal (Ready=False, reason UnsupportedFeature)
a mesh answers. Meant for reviewing GitOps pull requests. Backend ports that
the controller would read from the Services must be in the spec; a Canary
renders the route it writes when Initialized (all traffic to <service>-primary).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := o.render(cmd.InOrStdin())
			if err != nil {
				return err
			}
			return printRenderings(c.out, rs, o.profile)
		},
	}
	o.bind(cmd)
	return cmd
}

func (c *cli) diffCommand() *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "diff -f FILE [--mesh M]",
		Short: "Compare what Meshplane would write for FILE with the live cluster",
		Long: `diff renders FILE like render and compares each output with the live object:
"+ create" when it does not exist, "= unchanged" when every field Meshplane
sets already has that value, otherwise a unified diff of those fields (live
fields Meshplane does not set, such as status or defaults, are left out).
The exit status is 1 when anything differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := o.render(cmd.InOrStdin())
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			changed, err := diffRenderings(cmd.Context(), cl, c.out, rs)
			if err != nil {
				return err
			}
			if changed {
				return errDiffers
			}
			return nil
		},
	}
	o.bind(cmd)
	return cmd
}

var errDiffers = errors.New("the live cluster differs from what Meshplane would write")

// render decodes the file and translates each supported object.
func (o *renderOptions) render(stdin io.Reader) ([]rendering, error) {
	in := stdin
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	switch strings.ToLower(o.profile) {
	case "", "sidecar", "ambient":
	default:
		return nil, fmt.Errorf("--profile %q: want Sidecar or Ambient", o.profile)
	}
	reg := providers.Registry()
	meshes := reg.Names()
	if o.mesh != "" {
		p, err := reg.Get(meshv1alpha1.Provider(canonical(o.mesh)))
		if err != nil {
			return nil, err
		}
		meshes = []meshv1alpha1.Provider{p.Name()}
	}
	applier := &apply.Applier{Scheme: scheme.New()}
	var out []rendering
	dec := utilyaml.NewYAMLOrJSONDecoder(in, 4096)
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if len(raw) == 0 {
			continue
		}
		rs, err := renderObject(reg, applier, raw, meshes, o.mesh != "")
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no TrafficSplit, ZeroTrustPolicy, Canary, TelemetryPolicy, ResiliencePolicy, EgressPolicy, IngressGateway or ProxyPolicy", o.file)
	}
	return out, nil
}

// canonical spells a mesh name as the API does (istio -> Istio).
func canonical(s string) string {
	for _, p := range meshv1alpha1.Providers {
		if strings.EqualFold(string(p), s) {
			return string(p)
		}
	}
	return s
}

func renderObject(reg *mesh.Registry, applier *apply.Applier, raw map[string]any, meshes []meshv1alpha1.Provider, forced bool) ([]rendering, error) {
	b, err := yaml.Marshal(raw)
	if err != nil {
		return nil, err
	}
	kind, _ := raw["kind"].(string)
	var obj client.Object
	var provider meshv1alpha1.Provider
	switch kind {
	case "TrafficSplit":
		ts := &meshv1alpha1.TrafficSplit{}
		err, obj = yaml.UnmarshalStrict(b, ts), ts
		provider = ts.Spec.Provider
	case "ZeroTrustPolicy":
		zt := &meshv1alpha1.ZeroTrustPolicy{}
		err, obj = yaml.UnmarshalStrict(b, zt), zt
		provider = zt.Spec.Provider
	case "Canary":
		cn := &meshv1alpha1.Canary{}
		err, obj = yaml.UnmarshalStrict(b, cn), cn
		provider = cn.Spec.Provider
	case "TelemetryPolicy":
		tp := &meshv1alpha1.TelemetryPolicy{}
		err, obj = yaml.UnmarshalStrict(b, tp), tp
		provider = tp.Spec.Provider
	case "ResiliencePolicy":
		rp := &meshv1alpha1.ResiliencePolicy{}
		err, obj = yaml.UnmarshalStrict(b, rp), rp
		provider = rp.Spec.Provider
	case "EgressPolicy":
		eg := &meshv1alpha1.EgressPolicy{}
		err, obj = yaml.UnmarshalStrict(b, eg), eg
		provider = eg.Spec.Provider
	case "IngressGateway":
		ig := &meshv1alpha1.IngressGateway{}
		err, obj = yaml.UnmarshalStrict(b, ig), ig
		provider = ig.Spec.Provider
	case "ProxyPolicy":
		pp := &meshv1alpha1.ProxyPolicy{}
		err, obj = yaml.UnmarshalStrict(b, pp), pp
		provider = pp.Spec.Provider
	default:
		return nil, nil // other kinds (MeshInstall, Namespaces, ...) are not translated
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	// The owner reference needs a UID; the live object's is unknown offline.
	obj.SetUID(types.UID("00000000-0000-0000-0000-000000000000"))
	if provider != "" && !forced {
		meshes = []meshv1alpha1.Provider{provider}
	}
	var out []rendering
	for _, p := range meshes {
		r := rendering{kind: kind, namespace: obj.GetNamespace(), name: obj.GetName(), provider: p}
		objs, err := translate(reg, obj, p)
		if err == nil {
			r.objects, err = applier.Desired(apply.Owner{Object: obj, Kind: kind, SharedKinds: renderedSharedKinds}, objs)
		}
		r.refused = err
		out = append(out, r)
	}
	return out, nil
}

// translate runs the provider's translator, as the controllers do.
func translate(reg *mesh.Registry, obj client.Object, p meshv1alpha1.Provider) ([]client.Object, error) {
	switch o := obj.(type) {
	case *meshv1alpha1.TrafficSplit:
		tr, err := reg.TrafficTranslator(p)
		if err != nil {
			return nil, err
		}
		return tr.TranslateTrafficSplit(o)
	case *meshv1alpha1.ZeroTrustPolicy:
		tr, err := reg.PolicyTranslator(p)
		if err != nil {
			return nil, err
		}
		return tr.TranslateZeroTrustPolicy(o)
	case *meshv1alpha1.Canary:
		tr, err := reg.TrafficTranslator(p)
		if err != nil {
			return nil, err
		}
		return tr.TranslateTrafficSplit(canaryRoute(o, p))
	case *meshv1alpha1.TelemetryPolicy:
		tr, err := reg.TelemetryTranslator(p)
		if err != nil {
			return nil, err
		}
		// Offline, the namespace's data plane is unknown: sidecar.
		return tr.TranslateTelemetryPolicy(o, mesh.NamespaceFacts{Name: o.Namespace, Mode: mesh.Sidecar})
	case *meshv1alpha1.ResiliencePolicy:
		return translateResilience(reg, o, p)
	case *meshv1alpha1.EgressPolicy:
		tr, err := reg.EgressTranslator(p)
		if err != nil {
			return nil, err
		}
		// Offline, the namespace is taken as a sidecar namespace.
		return tr.TranslateEgressPolicy(o, mesh.NamespaceFacts{Name: o.Namespace, Mode: mesh.Sidecar})
	case *meshv1alpha1.IngressGateway:
		tr, err := reg.IngressTranslator(p)
		if err != nil {
			return nil, err
		}
		// Offline, the install and the GatewayClass are unknown: the
		// translation alone (its spec refusals), in a sidecar namespace.
		return tr.TranslateIngressGateway(o, mesh.Scope{Install: mesh.InstallFacts{Provider: p},
			Namespace: mesh.NamespaceFacts{Name: o.Namespace, Mode: mesh.Sidecar}})
	case *meshv1alpha1.ProxyPolicy:
		return translateProxy(reg, o, p)
	}
	return nil, fmt.Errorf("cannot translate %T", obj)
}

// renderedSharedKinds are the shared kinds a rendering may hold: the
// partial Deployment of a ProxyPolicy's pod-template annotations.
var renderedSharedKinds = []schema.GroupKind{{Group: "apps", Kind: "Deployment"}}

// selectedWorkloads names the partial Deployment a ProxyPolicy renders:
// offline, the workloads the selector picks are unknown.
const selectedWorkloads = "selected-workloads"

// translateProxy renders a ProxyPolicy: its owned outputs, then its
// pod-template annotations as the partial Deployment the controller
// applies to every selected Deployment, StatefulSet and DaemonSet. Offline,
// the namespace is taken as a sidecar namespace.
func translateProxy(reg *mesh.Registry, o *meshv1alpha1.ProxyPolicy, p meshv1alpha1.Provider) ([]client.Object, error) {
	tr, err := reg.ProxyTranslator(p)
	if err != nil {
		return nil, err
	}
	cfg, err := tr.TranslateProxyPolicy(o, mesh.NamespaceFacts{Name: o.Namespace, Mode: mesh.Sidecar})
	if err != nil || len(cfg.Annotations) == 0 {
		return cfg.Objects, err
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	u.SetNamespace(o.Namespace)
	u.SetName(selectedWorkloads)
	ann := map[string]any{}
	for k, v := range cfg.Annotations {
		ann[k] = v
	}
	if err := unstructured.SetNestedMap(u.Object, ann, "spec", "template", "metadata", "annotations"); err != nil {
		return nil, err
	}
	return append(cfg.Objects, u), nil
}

// canaryRoute is the TrafficSplit a Canary's controller translates when the
// Canary is Initialized: the routed Service to <service>-primary (100) and
// <service>-canary (0), with the Canary's retries and timeout (the naming
// of controllers/canary outputs.go).
func canaryRoute(cn *meshv1alpha1.Canary, p meshv1alpha1.Provider) *meshv1alpha1.TrafficSplit {
	svc := cn.Spec.Service.Name
	if svc == "" {
		svc = cn.Spec.TargetRef.Name
	}
	port := cn.Spec.Service.Port
	return &meshv1alpha1.TrafficSplit{
		ObjectMeta: metav1.ObjectMeta{Name: cn.Name, Namespace: cn.Namespace},
		Spec: meshv1alpha1.TrafficSplitSpec{
			MeshSelection: meshv1alpha1.MeshSelection{Provider: p},
			Service:       meshv1alpha1.ServiceReference{Name: svc, Port: &port},
			Backends:      []meshv1alpha1.WeightedBackend{{Name: svc + "-primary", Weight: 100}, {Name: svc + "-canary", Weight: 0}},
			StableBackend: svc + "-primary",
			Retries:       cn.Spec.Service.Retries,
			Timeout:       cn.Spec.Service.Timeout,
		},
	}
}

func printRenderings(w io.Writer, rs []rendering, profile string) error {
	for _, r := range rs {
		title := r.title()
		if profile != "" {
			title += " (profile " + profile + ")"
		}
		if r.refused != nil {
			// The reason the controller would report (UnsupportedFeature,
			// InvalidSpec, ...).
			reason := outcome.Reason(r.refused, "TranslationFailed")
			fmt.Fprintf(w, "# %s: refused, Ready=False reason %s: %v\n", title, reason, r.refused)
			continue
		}
		fmt.Fprintf(w, "# %s: %d object(s)\n", title, len(r.objects))
		for _, u := range r.objects {
			b, err := yaml.Marshal(u.Object)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "---\n%s", b)
		}
	}
	return nil
}

func diffRenderings(ctx context.Context, cl client.Client, w io.Writer, rs []rendering) (bool, error) {
	changed := false
	for _, r := range rs {
		if r.refused != nil {
			fmt.Fprintf(w, "! %s: refused: %v\n", r.title(), r.refused)
			changed = true
			continue
		}
		for _, want := range r.objects {
			id := fmt.Sprintf("%s %s/%s", want.GetKind(), want.GetNamespace(), want.GetName())
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(want.GroupVersionKind())
			err := cl.Get(ctx, client.ObjectKeyFromObject(want), live)
			switch {
			case apierrors.IsNotFound(err):
				fmt.Fprintf(w, "+ create %s (%s)\n", id, r.title())
				changed = true
				continue
			case err != nil:
				return changed, fmt.Errorf("%s: %w", id, err)
			}
			// The owner reference's UID and the hash of the desired state
			// are not comparable offline.
			cmpWant := want.DeepCopy()
			cmpWant.SetOwnerReferences(nil)
			unstructured.RemoveNestedField(cmpWant.Object, "metadata", "annotations", apply.HashAnnotation)
			if apply.Contains(live.Object, cmpWant.Object) {
				fmt.Fprintf(w, "= unchanged %s\n", id)
				continue
			}
			changed = true
			a, b, err := sideBySide(prune(live.Object, cmpWant.Object), cmpWant.Object)
			if err != nil {
				return changed, err
			}
			d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: a, B: b, FromFile: "live " + id, ToFile: "meshplane " + id, Context: 3})
			fmt.Fprintf(w, "~ update %s (%s)\n%s", id, r.title(), d)
		}
	}
	return changed, nil
}

func sideBySide(live, want map[string]any) ([]string, []string, error) {
	a, err := yaml.Marshal(live)
	if err != nil {
		return nil, nil, err
	}
	b, err := yaml.Marshal(want)
	if err != nil {
		return nil, nil, err
	}
	return difflib.SplitLines(string(a)), difflib.SplitLines(string(bytes.TrimSpace(b)) + "\n"), nil
}

// prune keeps of live only the map keys want has, so the diff shows the
// fields Meshplane sets.
func prune(live, want any) map[string]any {
	out, _ := pruneValue(live, want).(map[string]any)
	return out
}

func pruneValue(live, want any) any {
	wm, ok := want.(map[string]any)
	if !ok {
		return live
	}
	lm, ok := live.(map[string]any)
	if !ok {
		return live
	}
	out := map[string]any{}
	keys := make([]string, 0, len(wm))
	for k := range wm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if lv, ok := lm[k]; ok {
			out[k] = pruneValue(lv, wm[k])
		}
	}
	return out
}
