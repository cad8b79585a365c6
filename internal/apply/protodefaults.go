package apply

import (
	"encoding/json"
	"reflect"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fillProtoDefaults completes live, the JSON of a typed object whose spec
// is a protocol buffer message (Istio's kinds), with the spec fields that
// hold their zero value: protobuf JSON leaves them out (an enum's first
// value, such as a Sidecar's outboundTrafficPolicy mode REGISTRY_ONLY or a
// ServiceEntry's location MESH_EXTERNAL), so a desired output that writes
// them out (to own them, and so repair another writer's change) would
// never look current and every no-op reconcile would write. Only missing
// keys are added (maps are merged, lists and present values are left as
// read); unset messages (null) are not added.
func fillProtoDefaults(obj client.Object, live map[string]any) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	f := v.Elem().FieldByName("Spec")
	if !f.IsValid() || !f.CanAddr() {
		return
	}
	msg, ok := f.Addr().Interface().(proto.Message)
	if !ok {
		return
	}
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		return
	}
	var full map[string]any
	if json.Unmarshal(b, &full) != nil {
		return
	}
	spec, _ := live["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		live["spec"] = spec
	}
	mergeMissing(spec, full)
}

// mergeMissing adds to dst the keys of src it lacks (null values aside),
// recursing into maps both hold.
func mergeMissing(dst, src map[string]any) {
	for k, sv := range src {
		dv, ok := dst[k]
		if !ok {
			if sv != nil {
				dst[k] = sv
			}
			continue
		}
		dm, dok := dv.(map[string]any)
		sm, sok := sv.(map[string]any)
		if dok && sok {
			mergeMissing(dm, sm)
		}
	}
}
