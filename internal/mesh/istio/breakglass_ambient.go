package istio

import "github.com/meshplane/meshplane/internal/mesh"

// ambientMarkers are the namespace labels a BreakGlass removes from an
// ambient namespace besides istio.io/dataplane-mode (an InjectionMarker
// already): the use-waypoint label. Removing istio.io/dataplane-mode takes
// the namespace's pods out of ztunnel's redirection at once, with no
// restart (https://istio.io/latest/docs/ambient/usage/add-workloads/);
// removing use-waypoint stops clients elsewhere in the mesh from sending
// the namespace's Service traffic through its waypoint, which may be what
// is down (https://istio.io/latest/docs/ambient/usage/waypoint/). Both are
// recorded with their prior values and restored exactly like every other
// marker. A Service's own use-waypoint label is not a namespace marker and
// stays.
var ambientMarkers = []mesh.Marker{{Key: UseWaypointLabel}}
