// Package publish opens and closes the change sets in which docker2cvmfs
// writes layers and descriptor records into a repository.
//
// Two publishers exist. Local writes into a directory laid out like a
// repository (<root>/<repo>/...), which is what the tests use and what a
// machine without a CernVM-FS release manager can do; it holds the
// repository's shared lock while it writes. ReleaseManager runs on a
// CernVM-FS release manager (stratum 0) and wraps the writes in a
// transaction:
//
//	cvmfs_server transaction <repo>
//	... layers and records written below /cvmfs/<repo>/ ...
//	cvmfs_server publish <repo>        when everything was written
//	cvmfs_server abort -f <repo>       when anything failed
//
// Why a transaction and not `cvmfs_server ingest`: ingest drops extended
// attributes even with CVMFS_INCLUDE_XATTRS=true, so file capabilities and
// every other attribute of the image would be lost, and an opaque directory
// could not be marked. A transaction keeps them when the repository's
// server.conf has CVMFS_INCLUDE_XATTRS=true; ReleaseManager refuses to
// start without it.
//
// Whiteouts in a transaction are written in the AUFS format (".wh." marker
// files), which the graphdriver honours. The overlay format cannot be
// used there: the release manager's /cvmfs/<repo> is itself an overlay
// union during a transaction, and a character device 0/0 created through an
// overlay mount is taken by that mount as its own whiteout, so the entry
// would vanish from the transaction instead of being published.
package publish
