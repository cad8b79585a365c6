package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// cli holds what every command needs.
type cli struct {
	flags  *genericclioptions.ConfigFlags
	out    io.Writer
	errOut io.Writer
	// allNamespaces lists namespaced kinds in every namespace.
	allNamespaces bool
}

func newRootCommand(out, errOut io.Writer) *cobra.Command {
	c := &cli{flags: genericclioptions.NewConfigFlags(true), out: out, errOut: errOut}
	root := &cobra.Command{
		Use:           "kubectl-meshplane",
		Short:         "Operate Meshplane: status, break-glass, canaries and upgrades",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	c.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(c.statusCommand(), c.breakGlassCommand(), c.canaryCommand(), c.upgradeCommand(), c.adoptionCommand(), c.renderCommand(), c.diffCommand())
	return root
}

func (c *cli) client() (client.Client, error) {
	cfg, err := c.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	s := runtime.NewScheme()
	if err := meshv1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: s})
}

// namespace is the -n namespace or the kubeconfig's.
func (c *cli) namespace() (string, error) {
	ns, _, err := c.flags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// row is one object in the status table.
type row struct {
	kind, namespace, name, ready, reason, detail string
}

func conditionRow(kind string, obj metav1.Object, conds []metav1.Condition, detail string) row {
	r := row{kind: kind, namespace: obj.GetNamespace(), name: obj.GetName(), ready: "Unknown", reason: "NotReconciled", detail: detail}
	if c := meta.FindStatusCondition(conds, meshv1alpha1.ReadyCondition); c != nil {
		r.ready, r.reason = string(c.Status), c.Reason
	}
	if c := meta.FindStatusCondition(conds, meshv1alpha1.StalledCondition); c != nil && c.Status == metav1.ConditionTrue {
		r.reason = c.Reason
		if c.Message != "" {
			r.detail = strings.TrimSpace(r.detail + " " + c.Message)
		}
	}
	if r.namespace == "" {
		r.namespace = "-"
	}
	return r
}

func (c *cli) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every Meshplane object with its Ready condition and reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.status(cmd.Context())
		},
	}
	cmd.Flags().BoolVarP(&c.allNamespaces, "all-namespaces", "A", false, "list namespaced kinds in every namespace")
	return cmd
}

func (c *cli) status(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !c.allNamespaces {
		ns, err := c.namespace()
		if err != nil {
			return err
		}
		opts = append(opts, client.InNamespace(ns))
	}
	var rows []row
	var mis meshv1alpha1.MeshInstallList
	if err := cl.List(ctx, &mis); err != nil {
		return err
	}
	for _, o := range mis.Items {
		rows = append(rows, conditionRow("MeshInstall", &o, o.Status.Conditions,
			fmt.Sprintf("%s %s (installed %s)", o.Spec.Provider, o.Spec.Version, dash(o.Status.InstalledVersion))))
	}
	var revs meshv1alpha1.MeshRevisionList
	if err := cl.List(ctx, &revs); err != nil {
		return err
	}
	for _, o := range revs.Items {
		rows = append(rows, conditionRow("MeshRevision", &o, o.Status.Conditions,
			fmt.Sprintf("%s %s %s, %d namespaces, %d pods", o.Spec.MeshInstallRef.Name, o.Spec.Version, dash(string(o.Status.Phase)), o.Status.NamespaceCount, o.Status.PodCount)))
	}
	var tss meshv1alpha1.TrafficSplitList
	if err := cl.List(ctx, &tss, opts...); err != nil {
		return err
	}
	for _, o := range tss.Items {
		rows = append(rows, conditionRow("TrafficSplit", &o, o.Status.Conditions, "weights "+dash(o.Status.Weights)))
	}
	var ztps meshv1alpha1.ZeroTrustPolicyList
	if err := cl.List(ctx, &ztps, opts...); err != nil {
		return err
	}
	for _, o := range ztps.Items {
		rows = append(rows, conditionRow("ZeroTrustPolicy", &o, o.Status.Conditions, "mTLS "+dash(o.Status.Mode)))
	}
	var cans meshv1alpha1.CanaryList
	if err := cl.List(ctx, &cans, opts...); err != nil {
		return err
	}
	for _, o := range cans.Items {
		rows = append(rows, conditionRow("Canary", &o, o.Status.Conditions,
			fmt.Sprintf("%s weight %d%%", dash(string(o.Status.Phase)), o.Status.CanaryWeight)))
	}
	var feds meshv1alpha1.MeshFederationList
	if err := cl.List(ctx, &feds); err != nil {
		return err
	}
	for _, o := range feds.Items {
		rows = append(rows, conditionRow("MeshFederation", &o, o.Status.Conditions, "clusters ready "+dash(o.Status.ReadyClusters)))
	}
	var bgs meshv1alpha1.BreakGlassList
	if err := cl.List(ctx, &bgs); err != nil {
		return err
	}
	active := 0
	for _, o := range bgs.Items {
		if breakGlassActive(&o) {
			active++
		}
		rows = append(rows, conditionRow("BreakGlass", &o, o.Status.Conditions,
			fmt.Sprintf("%s, %d namespaces: %s", dash(string(o.Status.Phase)), o.Status.Touched.Namespaces, o.Spec.Reason)))
	}
	return c.printStatus(rows, active)
}

// printStatus prints the status table and, when break-glasses are active,
// how to restore.
func (c *cli) printStatus(rows []row, active int) error {
	if len(rows) == 0 {
		fmt.Fprintln(c.out, "No Meshplane objects found.")
		return nil
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAMESPACE\tNAME\tREADY\tREASON\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.kind, r.namespace, r.name, r.ready, r.reason, r.detail)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if active > 0 {
		fmt.Fprintf(c.out, "\n%d active break-glass(es): the mesh is disabled where they apply. Restore with: kubectl meshplane break-glass restore NAME\n", active)
	}
	return nil
}

// breakGlassActive is true until a BreakGlass has restored.
func breakGlassActive(bg *meshv1alpha1.BreakGlass) bool {
	return bg.DeletionTimestamp == nil && bg.Status.Phase != meshv1alpha1.BreakGlassRestored
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) breakGlassCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "break-glass", Short: "Disable the mesh during an incident, and restore it"}
	var (
		reason, selector, mesh, name string
		namespaces                   []string
		restart                      bool
		expires                      time.Duration
	)
	engage := &cobra.Command{
		Use:   "engage --reason REASON [--namespace-selector SELECTOR] [--mesh NAME]",
		Short: "Create a BreakGlass: detach injection, relax policies, pin traffic to stable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.engage(cmd.Context(), engageOptions{reason: reason, selector: selector, namespaces: namespaces, mesh: mesh, name: name, restart: restart, expires: expires})
		},
	}
	engage.Flags().StringVar(&reason, "reason", "", "why the glass is broken, e.g. an incident reference (required)")
	engage.Flags().StringVar(&selector, "namespace-selector", "", "label selector of the namespaces to cover, e.g. team=payments (default: every namespace the mesh serves)")
	engage.Flags().StringSliceVar(&namespaces, "namespaces", nil, "namespaces to cover (instead of --namespace-selector)")
	engage.Flags().StringVar(&mesh, "mesh", "", "the MeshInstall to disable (default: the only one)")
	engage.Flags().StringVar(&name, "name", "", "name of the BreakGlass (default: break-glass-<time>)")
	engage.Flags().BoolVar(&restart, "restart-workloads", false, "rollout-restart workloads so running pods lose their sidecars")
	engage.Flags().DurationVar(&expires, "expires-after", 0, "restore automatically after this long (at least 1m)")
	_ = engage.MarkFlagRequired("reason")
	restore := &cobra.Command{
		Use:   "restore NAME",
		Short: "Delete a BreakGlass; Meshplane restores the exact prior state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.restore(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(engage, restore)
	return cmd
}

type engageOptions struct {
	reason, selector, mesh, name string
	namespaces                   []string
	restart                      bool
	expires                      time.Duration
}

func (c *cli) engage(ctx context.Context, o engageOptions) error {
	if strings.TrimSpace(o.reason) == "" {
		return errors.New("--reason must say why (an incident reference)")
	}
	if o.selector != "" && len(o.namespaces) > 0 {
		return errors.New("use --namespace-selector or --namespaces, not both")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	if o.mesh != "" {
		if err := cl.Get(ctx, types.NamespacedName{Name: o.mesh}, &meshv1alpha1.MeshInstall{}); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("meshinstall %s not found (kubectl get meshinstalls lists them)", o.mesh)
			}
			return err
		}
	} else {
		var mis meshv1alpha1.MeshInstallList
		if err := cl.List(ctx, &mis); err != nil {
			return err
		}
		switch len(mis.Items) {
		case 0:
			return errors.New("no MeshInstall in this cluster; name the mesh with --mesh")
		case 1:
			o.mesh = mis.Items[0].Name
		default:
			names := make([]string, 0, len(mis.Items))
			for _, m := range mis.Items {
				names = append(names, m.Name)
			}
			return fmt.Errorf("%d MeshInstalls (%s); choose one with --mesh", len(names), strings.Join(names, ", "))
		}
	}
	bg := &meshv1alpha1.BreakGlass{
		ObjectMeta: metav1.ObjectMeta{Name: o.name},
		Spec: meshv1alpha1.BreakGlassSpec{
			Reason:  o.reason,
			Target:  meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: o.mesh}},
			Actions: meshv1alpha1.BreakGlassActions{RestartWorkloads: o.restart},
		},
	}
	if bg.Name == "" {
		bg.Name = "break-glass-" + time.Now().UTC().Format("20060102-150405")
	}
	if o.selector != "" {
		sel, err := metav1.ParseToLabelSelector(o.selector)
		if err != nil {
			return fmt.Errorf("--namespace-selector: %w", err)
		}
		bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{NamespaceSelector: sel}
	} else if len(o.namespaces) > 0 {
		bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: o.namespaces}
	}
	if o.expires > 0 {
		bg.Spec.ExpiresAfter = &metav1.Duration{Duration: o.expires}
	}
	if err := cl.Create(ctx, bg); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "breakglass/%s created for mesh %s. Watch it with: kubectl get breakglass %s -w\nRestore with: kubectl meshplane break-glass restore %s\n", bg.Name, o.mesh, bg.Name, bg.Name)
	return nil
}

func (c *cli) restore(ctx context.Context, name string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	bg := &meshv1alpha1.BreakGlass{}
	if err := cl.Get(ctx, types.NamespacedName{Name: name}, bg); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("breakglass %s not found (kubectl meshplane status lists the active ones)", name)
		}
		return err
	}
	if err := cl.Delete(ctx, bg); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "breakglass/%s deleted: Meshplane restores the recorded state and then removes it.\n", name)
	return nil
}

func (c *cli) canaryCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "canary", Short: "Promote or abort a Canary now"}
	for _, action := range []string{"promote", "abort"} {
		cmd.AddCommand(&cobra.Command{
			Use:   action + " NAME",
			Short: map[string]string{"promote": "Promote the canary now, skipping the remaining steps", "abort": "Roll the canary back now"}[action],
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.canaryAction(cmd.Context(), args[0], action)
			},
		})
	}
	return cmd
}

func (c *cli) canaryAction(ctx context.Context, name, action string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ns, err := c.namespace()
	if err != nil {
		return err
	}
	can := &meshv1alpha1.Canary{}
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, can); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("canary %s not found in namespace %s", name, ns)
		}
		return err
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meshv1alpha1.CanaryActionAnnotation, action)
	if err := cl.Patch(ctx, can, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "canary/%s in %s: %s requested (%s=%s); Meshplane removes the annotation once it acted.\n", name, ns, action, meshv1alpha1.CanaryActionAnnotation, action)
	return nil
}

func (c *cli) upgradeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "upgrade", Short: "Mesh upgrades"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status [MESHINSTALL]",
		Short: "Show each MeshInstall's upgrade and revision migration progress",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.upgradeStatus(cmd.Context(), args)
		},
	})
	return cmd
}

func (c *cli) upgradeStatus(ctx context.Context, args []string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var mis []meshv1alpha1.MeshInstall
	if len(args) == 1 {
		var mi meshv1alpha1.MeshInstall
		if err := cl.Get(ctx, types.NamespacedName{Name: args[0]}, &mi); err != nil {
			return err
		}
		mis = append(mis, mi)
	} else {
		var list meshv1alpha1.MeshInstallList
		if err := cl.List(ctx, &list); err != nil {
			return err
		}
		mis = list.Items
	}
	if len(mis) == 0 {
		fmt.Fprintln(c.out, "No MeshInstall found.")
		return nil
	}
	sort.Slice(mis, func(i, j int) bool { return mis[i].Name < mis[j].Name })
	for i, mi := range mis {
		if i > 0 {
			fmt.Fprintln(c.out)
		}
		st := mi.Status
		fmt.Fprintf(c.out, "MeshInstall %s: %s, desired %s, installed %s, strategy %s\n", mi.Name, mi.Spec.Provider, mi.Spec.Version, dash(st.InstalledVersion), upgradeStrategy(&mi))
		if st.ActiveRevision != "" {
			fmt.Fprintf(c.out, "  active revision: %s\n", st.ActiveRevision)
		}
		switch up := st.Upgrade; {
		case up == nil || up.Phase == "":
			if st.InstalledVersion != "" && st.InstalledVersion != mi.Spec.Version {
				fmt.Fprintf(c.out, "  upgrade: pending (%s -> %s, not started yet)\n", st.InstalledVersion, mi.Spec.Version)
			} else {
				fmt.Fprintln(c.out, "  upgrade: none in progress")
			}
		default:
			fmt.Fprintf(c.out, "  upgrade: %s -> %s, phase %s", dash(up.FromVersion), dash(up.ToVersion), up.Phase)
			if up.TargetRevision != "" {
				fmt.Fprintf(c.out, ", target revision %s", up.TargetRevision)
			}
			fmt.Fprintln(c.out)
			if up.TotalNamespaces > 0 {
				fmt.Fprintf(c.out, "  namespaces migrated: %d/%d (%d%%)\n", up.MigratedNamespaces, up.TotalNamespaces, up.MigratedNamespaces*100/up.TotalNamespaces)
			}
			if len(up.CurrentBatch) > 0 {
				fmt.Fprintf(c.out, "  current batch: %s\n", strings.Join(up.CurrentBatch, ", "))
			}
			if up.Message != "" {
				fmt.Fprintf(c.out, "  message: %s\n", up.Message)
			}
		}
		if len(st.Revisions) > 0 {
			w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "  REVISION\tVERSION\tREADY\tTAGS")
			for _, r := range st.Revisions {
				fmt.Fprintf(w, "  %s\t%s\t%v\t%s\n", r.Name, r.Version, r.Ready, dash(strings.Join(r.Tags, ",")))
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if cond := meta.FindStatusCondition(st.Conditions, meshv1alpha1.ReadyCondition); cond != nil {
			fmt.Fprintf(c.out, "  Ready=%s %s: %s\n", cond.Status, cond.Reason, cond.Message)
		}
	}
	return nil
}

func upgradeStrategy(mi *meshv1alpha1.MeshInstall) string {
	if mi.Spec.Upgrade != nil && mi.Spec.Upgrade.Strategy != "" {
		return string(mi.Spec.Upgrade.Strategy)
	}
	return string(meshv1alpha1.UpgradeInPlace)
}
