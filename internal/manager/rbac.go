package manager

// RBAC the manager itself needs (leader election, events, discovery of the
// mesh serving a namespace). Controllers declare their own next to their
// code; `make manifests` merges all markers into config/rbac/role.yaml.
//
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
//
// The secure metrics endpoint asks the API server who a caller is and
// whether it may GET /metrics:
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
