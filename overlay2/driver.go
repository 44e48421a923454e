// Package overlay2 is the overlay2 backend of the plugin.
package overlay2

import (
	"errors"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
)

// New is a placeholder until the backend lands.
func New(opts graphdriver.InitOptions, cvmfsRoot string) (graphdriver.Driver, error) {
	return nil, errors.New("overlay2 backend is not built yet")
}
