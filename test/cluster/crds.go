package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// CRDSet names one group of third-party CRDs collected by hack/collectcrds.
type CRDSet string

// The third-party CRD sets.
const (
	// Istio holds the CRDs of istio.io/api (networking, security, telemetry, extensions).
	Istio CRDSet = "istio"
	// GatewayAPI holds the Gateway API CRDs of the channel chosen by
	// CRDOptions.GatewayAPIChannel.
	GatewayAPI CRDSet = "gateway-api"
	// Cilium holds the cilium.io v2 and v2alpha1 CRDs.
	Cilium CRDSet = "cilium"
	// Linkerd holds the CRDs of the linkerd-crds chart, rendered with default values.
	Linkerd CRDSet = "linkerd"
	// MCS holds the Multi-Cluster Services API CRDs (ServiceExport,
	// ServiceImport) of sigs.k8s.io/mcs-api.
	MCS CRDSet = "mcs"
)

// AllCRDSets lists every third-party CRD set.
var AllCRDSets = []CRDSet{Istio, GatewayAPI, Cilium, Linkerd, MCS}

// GatewayAPIChannel is a release channel of the Gateway API CRDs.
type GatewayAPIChannel string

// The Gateway API channels. Experimental is a superset of Standard.
const (
	GatewayAPIStandard     GatewayAPIChannel = "standard"
	GatewayAPIExperimental GatewayAPIChannel = "experimental"
)

// MeshplaneCRDPath is the directory of Meshplane's own CRDs, relative to the
// repository root.
const MeshplaneCRDPath = "config/crd/bases"

// CRDOptions selects the CRDs installed into a cluster. The zero value
// installs Meshplane's CRDs (which must exist) and every third-party set, with
// the standard Gateway API channel.
type CRDOptions struct {
	// ThirdParty lists the third-party CRD sets to install; nil means
	// AllCRDSets. Use NoThirdParty to install none.
	ThirdParty []CRDSet
	// NoThirdParty installs no third-party CRDs, whatever ThirdParty says.
	NoThirdParty bool
	// GatewayAPIChannel chooses the Gateway API channel; empty means
	// GatewayAPIStandard.
	GatewayAPIChannel GatewayAPIChannel
	// SkipMeshplaneCRDs leaves out Meshplane's own CRDs.
	SkipMeshplaneCRDs bool
	// AllowMissingMeshplaneCRDs tolerates a missing config/crd/bases, for use
	// before the API has been generated. Third-party CRD directories must
	// always exist.
	AllowMissingMeshplaneCRDs bool
	// ExtraDirs are further directories of CRD manifests, e.g. test fixtures.
	ExtraDirs []string
}

// Dirs resolves the options to the list of CRD directories to install, each
// of which exists. Missing third-party CRDs produce an error that says to run
// `make test-crds`.
func (o CRDOptions) Dirs() ([]string, error) {
	var dirs []string
	if !o.SkipMeshplaneCRDs {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(root, filepath.FromSlash(MeshplaneCRDPath))
		switch _, err := os.Stat(dir); {
		case err == nil:
			dirs = append(dirs, dir)
		case errors.Is(err, os.ErrNotExist) && o.AllowMissingMeshplaneCRDs:
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("the Meshplane CRDs are missing: %s does not exist: run `make manifests`, or set CRDOptions.AllowMissingMeshplaneCRDs", dir)
		default:
			return nil, err
		}
	}
	if !o.NoThirdParty {
		base, err := CRDDir()
		if err != nil {
			return nil, err
		}
		sets := o.ThirdParty
		if sets == nil {
			sets = AllCRDSets
		}
		for _, set := range sets {
			var dir string
			switch set {
			case Istio, Cilium, Linkerd, MCS:
				dir = filepath.Join(base, string(set))
			case GatewayAPI:
				channel := o.GatewayAPIChannel
				if channel == "" {
					channel = GatewayAPIStandard
				}
				if channel != GatewayAPIStandard && channel != GatewayAPIExperimental {
					return nil, fmt.Errorf("unknown Gateway API channel %q", channel)
				}
				dir = filepath.Join(base, string(set), string(channel))
			default:
				return nil, fmt.Errorf("unknown CRD set %q", set)
			}
			if err := requireCRDDir(dir); err != nil {
				return nil, err
			}
			dirs = append(dirs, dir)
		}
	}
	for _, dir := range o.ExtraDirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("extra CRD directory: %w", err)
		}
		dirs = append(dirs, abs)
	}
	return dirs, nil
}

// InstallCRDs installs the CRDs the options select into the cluster behind
// cfg and waits until they are established and served.
func InstallCRDs(cfg *rest.Config, opts CRDOptions) error {
	dirs, err := opts.Dirs()
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return nil
	}
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              dirs,
		ErrorIfPathMissing: true,
		MaxTime:            time.Minute,
	})
	return err
}
