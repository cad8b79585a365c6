package testenv

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheCaughtUp waits until cached (a manager's cached client) holds obj
// at the resourceVersion the API server (direct) has: a zero-writes test
// that reconciles on a cache still holding an older version of the object
// sends a status patch that its optimistic lock refuses, and counts it.
func CacheCaughtUp(t testing.TB, direct, cached client.Reader, obj client.Object) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	Eventually(t, DefaultTimeout, "the cache holds "+key.String()+" as the API server does", func() error {
		live := obj.DeepCopyObject().(client.Object)
		if err := direct.Get(context.Background(), key, live); err != nil {
			return err
		}
		seen := obj.DeepCopyObject().(client.Object)
		if err := cached.Get(context.Background(), key, seen); err != nil {
			return err
		}
		if seen.GetResourceVersion() != live.GetResourceVersion() {
			return Errorf("cache at %s, API server at %s", seen.GetResourceVersion(), live.GetResourceVersion())
		}
		return nil
	})
}
