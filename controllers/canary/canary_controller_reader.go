package canary

import (
	"context"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// freshReader reads a Canary from the cache, and from the API server only
// when the cache does not hold the version this controller last wrote (or
// does not hold the Canary at all). The engine's memory is the status, so
// a reconcile must never act on a state older than the last one it wrote
// (a stale Progressing read after a rollback would scale the canary back
// up); reading every Canary uncached on every interval cost one API call
// per Canary and interval, on the analysis's critical path.
type freshReader struct {
	cache, api client.Reader
	// written maps a Canary's key to the resourceVersion of its last
	// write by this controller.
	written sync.Map
}

// Get reads key into obj: from the cache when it holds this controller's
// last write (or nothing was written yet by this process), else from the
// API server.
func (f *freshReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := f.cache.Get(ctx, key, obj, opts...); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		return f.api.Get(ctx, key, obj, opts...)
	}
	if rv, ok := f.written.Load(key); ok && rv != obj.GetResourceVersion() {
		return f.api.Get(ctx, key, obj, opts...)
	}
	return nil
}

// List is the API server's.
func (f *freshReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return f.api.List(ctx, list, opts...)
}

// saw records the version of obj a reconcile ended with (its last write,
// or what it read when it wrote nothing); a Canary gone is forgotten.
func (f *freshReader) saw(key client.ObjectKey, obj client.Object) {
	if !obj.GetDeletionTimestamp().IsZero() && len(obj.GetFinalizers()) == 0 {
		f.written.Delete(key)
		return
	}
	f.written.Store(key, obj.GetResourceVersion())
}
