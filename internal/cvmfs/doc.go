// Package cvmfs mounts CernVM-FS repositories for the plugin's "internal"
// mount method, where the plugin, not the host, mounts each repository when
// a layer first needs it and unmounts it when the last layer using it is
// released.
//
// A repository is mounted the way the client's own mount helper
// (mount.cvmfs, which `mount -t cvmfs REPO DIR` runs) does it:
//
//	cvmfs2 -o rw,system_mount,fsname=cvmfs2,allow_other,grab_mountpoint,uid=UID,gid=GID REPO ROOT/REPO
//
// rw lets the client answer writes with an error of its own rather than the
// kernel's; system_mount marks a mount made by root for all users, which
// the client needs to use the shared cache; fsname names the file system
// "cvmfs2" in the mount table, where the tools look for it; allow_other lets
// processes of other users (every container) read it; grab_mountpoint has
// the client take the mount point over even if something is mounted there;
// uid and gid are those of the unprivileged "cvmfs" user the client drops
// to. The client reads its configuration (servers, proxies, keys, cache)
// from /etc/cvmfs, forks into the background once the file system is
// mounted, and exits when the file system is unmounted. A second cvmfs2 for
// a repository that is being mounted may start a second client, so mounts
// of one repository must never run concurrently: Repositories serializes
// them.
//
// A running client is controlled through its socket with cvmfs_talk:
//
//	cvmfs_talk -i REPO remount sync
//
// makes the client load the newest published revision at once rather than
// when its catalog's time to live runs out, and waits until it is served.
//
// Unmounting is a plain umount(2) of ROOT/REPO; it fails with EBUSY while
// an overlay still uses a directory of the repository.
package cvmfs
