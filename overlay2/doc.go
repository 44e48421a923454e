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
//
// # Mounting repositories
//
// By default the host mounts CernVM-FS repositories below the CernVM-FS
// root. With WithRepositories (the plugin's internal mount method) the
// driver has them mounted itself: the first Get of a layer above a thin
// layer acquires every repository its descriptor's layers lie in, before
// the layer directories are checked, and the Put that unmounts the layer
// releases them, so a repository stays mounted exactly while a mounted
// layer stacks it. Changes, which reads the layers below a layer without
// mounting it, holds them while it reads. The references live in memory
// only; a driver built after a restart of the plugin takes them again for
// every layer it finds mounted, before it serves any call.
package overlay2
