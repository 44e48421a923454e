// Package thinimage reads, checks and writes thin image descriptors.
//
// A thin image is an ordinary Docker image whose only layer holds one file,
// thin.json, at its root. That file, the descriptor, lists the image's real
// layers, which sit unpacked as directories in CernVM-FS repositories under
// /cvmfs. Pulling a thin image moves a few hundred bytes; CernVM-FS fetches
// the files of the real layers when, and only when, a container reads them.
//
// # The descriptor
//
//	{
//	  "version": "1.0",
//	  "min_version": "",
//	  "origin": "library/ubuntu:22.04@https://registry-1.docker.io/v2",
//	  "layers": [
//	    {"digest": "5f70bf18a086…", "url": "cvmfs://unpacked.cern.ch/layers/5f70bf18a086…"},
//	    {"digest": "e8c1b8f3d2a0…", "url": "cvmfs://unpacked.cern.ch/layers/e8c1b8f3d2a0…"}
//	  ],
//	  "comment": ""
//	}
//
// "version" is the format version the writer used, written <major>.<minor>
// in decimal. This reader takes every 1.x, and "0.1", which the first tools
// wrote and which means 1.0. An empty or missing version is refused: every
// known writer has always written one, so its absence means the file is not
// a descriptor, or was cut short.
//
// "min_version" is the lowest reader version that may use the descriptor;
// empty means any. A descriptor asking for more than ReaderVersion is
// refused with an error naming both versions, so that an old plugin never
// half-understands a newer image.
//
// "layers" lists the real layers base first, in the order of an image
// manifest. It must be present and not null; an empty list is a valid thin
// "scratch" image. Each layer has a "digest", hex with an optional
// algorithm prefix such as "sha256:", and a "url" (below). The digest names
// the layer in messages and for writers; the directory is found from the
// URL alone, so the digest's length is not checked.
//
// A layer may also carry "whiteouts", the format its directory records
// deletions in, as its writer knows it: "overlay" (character devices 0/0
// and opaque directories only, no AUFS markers) or "aufs" (".wh." markers
// as plain files, as cvmfs_server ingest leaves them). Descriptors written
// before this field existed lack it, and so may others; an absent field, or
// one of another value or type, means unknown. A driver looks for AUFS
// markers in every layer not declared "overlay": over a network file system
// that walk is the one cost of a thin layer that grows with the size of the
// image, so a writer that knows the format should say it.
//
// "origin" and "comment" are free text. Unknown fields are ignored, so that
// newer writers can add fields without breaking this reader. Field names are
// matched without regard to case, as every Go reader of this format has
// done since the first one.
//
// # Lower directories
//
// Overlay lists lower directories top first, the reverse of the descriptor.
// For a layer mounted above a thin layer T whose descriptor lists L0, L1, L2
// (base first), with regular layers R1 and then R2 committed on top of T,
// the lower directories are, top first:
//
//	R2, R1, L2, L1, L0
//
// T's own directory, which holds only thin.json, is not among them, so the
// descriptor is never visible inside a container. TopFirst gives the
// descriptor's share of that list.
//
// Real images sometimes list one layer twice, for instance two identical
// empty layers. The kernel refuses a lower directory that appears twice
// ("conflicting lowerdir path", ELOOP, since Linux 5.2), so TopFirst keeps
// only the uppermost occurrence of each directory. That shows the same tree:
// the upper copy rewrites every path the lower copy touched, after whatever
// the layers between them did, so the lower copy's effect cannot be seen.
// The kernel also refuses a lower directory inside another ("overlapping
// lowerdir path"); no reordering can fix that, so Parse refuses such a
// descriptor and names both layers.
//
// # Layer URLs
//
// A layer URL has the form cvmfs://<repository>/<path> and names the
// directory <root>/<repository>/<path>, the root being /cvmfs unless the
// plugin is configured otherwise. The rules are strict because the URL comes
// from an image, that is, from anyone:
//
//   - The scheme is cvmfs; any other scheme, or none, is refused and named.
//     "cvmfs:repo/path", without the two slashes, is refused too.
//   - The repository is a host-like name: letters, digits, '.', '-' and '_',
//     starting with a letter or digit, so that it is one directory below the
//     root and can never be taken for "." or "..", or for a command-line
//     option when the repository is mounted on demand. User information
//     ("user@") and ports are refused.
//   - The path is resolved lexically: "." segments, empty segments and a
//     trailing slash are dropped, and "a/../b" becomes "b". A path that then
//     leaves the repository ("../etc"), names the repository itself ("",
//     "a/.."), or starts with a slash ("cvmfs://repo//etc", which reads like
//     the absolute path /etc) is refused.
//   - Queries, fragments, percent-encoding and backslashes are refused
//     rather than interpreted, so that no two readers can disagree about
//     which directory a URL names. Path segments may use letters, digits and
//     ". - _ + ~ @ =" only; in particular ':' and ',' are refused, because
//     they separate entries in overlay's mount options.
//
// The rules are lexical, as the format prescribes: Resolve never touches
// the file system, and a symbolic link inside a repository is followed when
// the layer is mounted. A repository may well hold links, to its own
// directories or to other repositories, and those are fine. A link that
// leads out of the CernVM-FS root is not: it would let an image show the
// host's own files, /etc for instance, inside a container. Check therefore
// follows the links of every layer directory and refuses one that ends
// outside the root. Two different URLs can also name one directory through
// a link; the kernel then refuses the mount as it would a duplicate.
package thinimage
