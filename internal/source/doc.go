// Package source opens the image docker2cvmfs makes thin: its configuration
// and its layers, base first, each layer as stored (compressed or not) with
// the uncompressed digest, the diff ID, that names it.
//
// Images come from the Docker daemon (streamed out as `docker save` does and
// kept in a temporary file while they are read), from a registry speaking
// the distribution API (with the credentials `docker login` stored), from an
// archive written by `docker save`, or from an OCI image layout. Package
// imageref parses the references that choose between them.
//
// Reading a layer does not check it against its diff ID: the caller hashes
// the uncompressed stream as it unpacks it, which costs no second pass.
package source
