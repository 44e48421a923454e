// Package aufs is the plugin's aufs backend: the layout and behaviour of
// Docker's former aufs driver for regular images, plus thin images whose
// layers are directories in a CernVM-FS repository. It serves kernels that
// carry aufs and no usable overlay, such as older Ubuntu and CernVM kernels.
//
// # On-disk layout
//
// Everything lives below the home directory dockerd hands to Init:
//
//	<home>/layers/<id>               the parent chain: one id a line, the parent first
//	<home>/diff/<id>                 the layer's own files: its writable aufs branch
//	<home>/mnt/<id>                  mount point of the layer's full tree
//	<home>/mounts/<id>               outstanding Gets of a mounted layer
//	<home>/thin/<id>/layers.json     only for a thin layer: its repository layers
//	<home>/thin/<id>/whiteouts/<n>   local branches for repository layer n (see below)
//
// A layer exists when layers/<id> does; Create writes that file last, and
// Remove deletes it first, so a crash never leaves a layer that looks whole
// and is not.
//
// The diff directory keeps deletions the way aufs writes them and the way
// they travel in layer tars: an empty file ".wh.<name>" deletes <name> from
// the layers below, and ".wh..wh..opq" in a directory hides everything the
// layers below hold there. Nothing is converted on the way in or out: Diff
// is the tar of the diff directory, without the bookkeeping aufs keeps at
// the root of a writable branch (.wh..wh.aufs, .wh..wh.plnk, .wh..wh.orph).
//
// # Mounts
//
// A layer with a parent is mounted on mnt/<id> with its own diff directory
// as the one writable branch and the diff directories of its ancestors,
// nearest first, as read-only branches that may hold whiteouts (ro+wh). A
// base layer and a thin layer are served from their diff directory without
// a mount.
//
// The kernel copies at most one page (4096 bytes) of mount options. A
// branch named by its absolute path costs about 100 bytes, so a page holds
// some 40 branches. The first mount call names as many branches as fit with
// the other options, and each following call is a remount that appends as
// many more as fit ("append:<dir>=ro+wh", comma-separated), in order, until
// all are there. aufs itself takes at most a compiled-in number of branches,
// 127 unless the kernel was built with more (CONFIG_AUFS_BRANCH_MAX_*); the
// backend reads the number from /sys/fs/aufs/config when aufs is a module,
// assumes 127 otherwise, and refuses a layer that would need more at Create,
// or at Get when a thin image makes the count known only then.
//
// Branches are named by absolute paths unless a path holds a character the
// option syntax reserves (':' separates branches, ',' options, '=' a
// branch from its permission); dockerd puts the plugin's name, tag and all,
// in the home path. The mount is then made from inside the home directory
// with relative paths; a repository layer whose path holds such a character
// cannot be mounted and is refused with an error naming it.
//
// Every mount also gets "dio", "xino=/dev/shm/aufs.xino" when /dev/shm is a
// tmpfs (aufs's inode translation table is then on a local file system and
// vanishes with the machine), and "dirperm1" when the kernel's aufs accepts
// it, which the backend finds out once, with a test mount, when it starts.
// Those are the options Docker's aufs driver used.
//
// # Thin layers
//
// A layer is thin when its diff directory holds thin.json after its tar was
// applied. The descriptor is validated then; its layer directories are
// checked when a layer above it is mounted, because a CernVM-FS repository
// may be mounted later than the image is pulled. The branches of every
// layer above a thin layer are, top first: the layer's own diff directory,
// the regular layers between it and the thin layer, then the descriptor's
// layer directories with the last listed uppermost. The thin layer's own
// diff directory is not a branch, so thin.json never shows inside a
// container, and Diff of the thin layer yields thin.json alone.
//
// Repository layers published with `cvmfs_server ingest` carry AUFS
// whiteouts as plain files, which aufs honours as they are. Layers
// published through a transaction with extended attributes carry overlay
// whiteouts instead: a 0/0 character device for a deleted entry and
// trusted.overlay.opaque=y on an opaque directory, which aufs would show as
// they are. For such a layer the backend builds, once per thin layer, a
// small local branch placed directly above it that holds the AUFS
// whiteouts meaning the same: ".wh.<name>" for every 0/0 device, and for
// every opaque directory a ".wh.<name>" for each entry the layers below
// have there and the layer itself has not, recursing into directories both
// have. A ".wh..wh..opq" marker cannot be used instead: placed above the
// repository layer, it would hide that layer's own entries too. Overlay
// features that have no AUFS equivalent (redirected directories and
// whiteouts of the "xwhiteouts" kind) are refused with an error naming the
// thin image's layer and its URL, never shown wrongly.
//
// # Testing without aufs
//
// Mounting goes through a small interface, so that the tests can run the
// shared conformance suite and check every mount call on kernels without
// aufs (see the package's tests). Because a stand-in that holds a mounted
// layer's writes apart from the writable branch must be asked to write them
// through before the branch is read, the driver does that, through an
// optional interface the kernel's mounter does not implement, before Diff,
// Changes and DiffSize read the branch of a mounted layer.
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
package aufs
