// Package engine is a small client of the Docker Engine API: it streams an
// image out of a daemon as `docker save` does, and loads an archive into it
// as `docker load` does. Those two calls are all docker2cvmfs needs, so the
// package speaks HTTP itself rather than bringing in the Docker client
// library.
//
// The daemon is the one DOCKER_HOST names, unix:///var/run/docker.sock when
// it is unset, as for the docker command. unix:// and tcp:// hosts without
// TLS are supported.
package engine
