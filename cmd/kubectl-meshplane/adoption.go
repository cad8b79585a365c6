package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// barWidth is the width of the adoption progress bar in characters.
const barWidth = 30

func (c *cli) adoptionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "adoption", Short: "Namespaces brought into a mesh in waves (MeshAdoption)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status [MESHADOPTION]",
		Short: "Show each MeshAdoption's progress bar and waves",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.adoptionStatus(cmd.Context(), args)
		},
	})
	return cmd
}

func (c *cli) adoptionStatus(ctx context.Context, args []string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var items []meshv1alpha1.MeshAdoption
	if len(args) == 1 {
		var ma meshv1alpha1.MeshAdoption
		if err := cl.Get(ctx, types.NamespacedName{Name: args[0]}, &ma); err != nil {
			return err
		}
		items = append(items, ma)
	} else {
		var list meshv1alpha1.MeshAdoptionList
		if err := cl.List(ctx, &list); err != nil {
			return err
		}
		items = list.Items
	}
	if len(items) == 0 {
		fmt.Fprintln(c.out, "No MeshAdoption found.")
		return nil
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	for i := range items {
		if i > 0 {
			fmt.Fprintln(c.out)
		}
		writeAdoption(c.out, &items[i])
	}
	return nil
}

// writeAdoption renders one MeshAdoption: a progress bar of enrolled
// namespaces, the phase, each wave and the Ready or Stalled condition.
func writeAdoption(w io.Writer, ma *meshv1alpha1.MeshAdoption) {
	st := ma.Status
	fmt.Fprintf(w, "MeshAdoption %s: MeshInstall %s (%s), phase %s\n", ma.Name, ma.Spec.MeshInstallRef.Name, dash(string(st.Provider)), dash(string(st.Phase)))
	fmt.Fprintf(w, "  %s %d/%d namespaces enrolled\n", progressBar(st.EnrolledNamespaces, st.TotalNamespaces, barWidth), st.EnrolledNamespaces, st.TotalNamespaces)
	for _, wv := range st.Waves {
		took := "in flight"
		if wv.StartTime != nil && wv.CompletionTime != nil {
			took = wv.CompletionTime.Sub(wv.StartTime.Time).Round(time.Second).String()
		}
		audit := ""
		if wv.WouldBeDenied != nil {
			audit = fmt.Sprintf(" (would-be denials: %d", *wv.WouldBeDenied)
			if wv.PromotionTime != nil {
				audit += ", promoted"
			}
			audit += ")"
		}
		fmt.Fprintf(w, "  wave %d %-9s %-9s %s%s\n", wv.Index, wv.Phase, took, strings.Join(wv.Namespaces, ", "), audit)
		if wv.Phase != meshv1alpha1.WaveEnrolled && wv.Message != "" {
			fmt.Fprintf(w, "         %s\n", wv.Message)
		}
	}
	for _, t := range []string{meshv1alpha1.StalledCondition, meshv1alpha1.BreakGlassActiveCondition, meshv1alpha1.ReadyCondition} {
		if cond := meta.FindStatusCondition(st.Conditions, t); cond != nil && (t == meshv1alpha1.ReadyCondition || cond.Status == "True") {
			fmt.Fprintf(w, "  %s=%s %s: %s\n", t, cond.Status, cond.Reason, cond.Message)
			break
		}
	}
}

// progressBar renders done of total as [#####.....] pct%.
func progressBar(done, total int32, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(".", width) + "]   -"
	}
	done = min(max(done, 0), total)
	n := int(int64(done) * int64(width) / int64(total))
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat(".", width-n), int64(done)*100/int64(total))
}
