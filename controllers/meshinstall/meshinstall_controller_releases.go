package meshinstall

import (
	"context"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/helm"
)

// Helm keeps a release in one Secret per revision, labelled owner=helm and
// name=<release> (its "secret" storage driver).
const (
	helmOwnerLabel, helmOwner = "owner", "helm"
	helmNameLabel             = "name"
)

// releaseInfos remembers what Helm storage said about each release, keyed
// by the names and resourceVersions of the release's storage Secrets as the
// manager's cache sees them (metadata only: no Secret body is cached). A
// reconcile that changes nothing decodes no release: Helm's read lists and
// decodes every revision's Secret, uncached.
type releaseInfos struct {
	mu sync.Mutex
	m  map[types.NamespacedName]releaseEntry
}

type releaseEntry struct {
	key  string
	info *helm.ReleaseInfo
}

func (c *releaseInfos) get(nn types.NamespacedName, key string) (*helm.ReleaseInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[nn]
	return e.info, ok && e.key == key
}

func (c *releaseInfos) put(nn types.NamespacedName, key string, info *helm.ReleaseInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[types.NamespacedName]releaseEntry{}
	}
	c.m[nn] = releaseEntry{key: key, info: info}
}

// forget drops a release Meshplane just changed.
func (c *releaseInfos) forget(nn types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, nn)
}

// storageKey names the storage Secrets of a release with their
// resourceVersions, from the cache; empty when there are none.
func (r *Reconciler) storageKey(ctx context.Context, name, ns string) (string, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{helmOwnerLabel: helmOwner, helmNameLabel: name}); err != nil {
		return "", err
	}
	parts := make([]string, 0, len(list.Items))
	for _, s := range list.Items {
		parts = append(parts, s.Name+"@"+s.ResourceVersion)
	}
	slices.Sort(parts)
	return strings.Join(parts, ","), nil
}

// release reads a deployed release through releaseInfos: Helm storage is
// read only when the release's Secrets changed since the last read (or the
// cache has not seen them yet). A release that is not found is not
// remembered.
func (r *Reconciler) release(ctx context.Context, name, ns string) (*helm.ReleaseInfo, error) {
	nn := types.NamespacedName{Namespace: ns, Name: name}
	key, err := r.storageKey(ctx, name, ns)
	if err != nil {
		return nil, err
	}
	if info, ok := r.infos.get(nn, key); ok && key != "" {
		return info, nil
	}
	info, err := r.Helm.Get(ctx, name, ns)
	if err != nil {
		return nil, err
	}
	if key != "" {
		r.infos.put(nn, key, info)
	}
	return info, nil
}
