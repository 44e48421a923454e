package graphtest

import (
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// TestVFS runs the suite against the reference backend, to prove the suite.
func TestVFS(t *testing.T) {
	Run(t, func(t testing.TB, home, cvmfsRoot string) graphdriver.Driver {
		return newVFS(home, cvmfsRoot, defaultDepth)
	}, Options{
		MaxLowerLayers: defaultDepth,
		InspectMount: func(t testing.TB, id string, m *mountinfo.Info) {
			if !strings.HasSuffix(m.Root, "/"+id+"/root") {
				t.Errorf("layer %s is mounted from %s, not from its root", id, m.Root)
			}
		},
	})
}
