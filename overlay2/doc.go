// Package overlay2 is the plugin's overlay2 backend: Docker's overlay2 layout
// and behaviour for regular images, plus thin images whose layers are
// directories in a CernVM-FS repository.
//
// # On-disk layout
//
// Everything lives below the home directory dockerd hands to Init:
//
//	<home>/l/<LINK>            short symlink to ../<id>/diff, one per layer
//	<home>/l/<LINK>            short symlink to a thin image's CernVM-FS layer
//	<home>/<id>/link           the layer's short link name
//	<home>/<id>/lower          the parent chain as "l/<LINK>:l/<LINK>...", top first
//	<home>/<id>/diff           the layer's own files (the overlay upper directory)
//	<home>/<id>/work           overlay's work directory (layers with a parent)
//	<home>/<id>/merged         mount point of the layer's full tree
//	<home>/<id>/thin           only in a thin layer: the resolved descriptor layers
//	<home>/<id>/mounts         the number of outstanding Gets of a mounted layer
//
// A base layer has no lower file and no work directory; Get returns its diff
// directory without mounting anything.
//
// # Why short links
//
// The kernel takes mount options in one page (4096 bytes). A lower layer
// named by its absolute path costs about 100 bytes, so a deep image passes the
// page after roughly 30 layers. Named by a 26-character link relative to the
// home directory, a lower layer costs 29 bytes, and 128 of them plus the upper
// and work directories fit in a page with room to spare. The driver uses
// absolute paths while they fit, and otherwise mounts from inside the home
// directory with relative paths. Relative paths also keep a colon or comma in
// the home path (dockerd puts the plugin name there) out of the options.
//
// # Thin layers
//
// A layer is thin when its diff directory holds thin.json after its tar was
// applied. The descriptor is validated then; its layer directories are
// checked when a layer above it is mounted, because a CernVM-FS repository
// may be mounted later than the image is pulled. For every layer above a thin
// layer, the lower directories are the regular layers between it and the thin
// layer, then the descriptor's layers with the last listed uppermost. The thin
// layer's own directory is not among them, so thin.json never shows inside a
// container, and Diff of the thin layer yields thin.json alone, so the image
// stays thin when it is saved or pushed.
package overlay2
