package mesh

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InboundTargetReader is implemented by a mesh whose resilience
// translation attaches to inbound policy targets the user owns (the
// objects that say which pods and port a proxy's inbound policy covers):
// the controller reads them and hands them to the translation in
// ResilienceInput.InboundTargets, so the translation stays pure.
type InboundTargetReader interface {
	// ReadInboundTargets returns the namespace's inbound policy targets;
	// none (no error) when their kind is not installed.
	ReadInboundTargets(ctx context.Context, c client.Reader, namespace string) ([]unstructured.Unstructured, error)
}
