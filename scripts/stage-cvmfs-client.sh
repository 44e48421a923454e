#!/usr/bin/env bash
# Stages a CernVM-FS client installed on this machine into the managed
# plugin's root file system, so that the plugin can mount repositories
# itself (MOUNT_METHOD=internal). `make plugin-dir CVMFS_CLIENT=...` runs it.
#
#   stage-cvmfs-client.sh ROOTFS CVMFS2
#
# ROOTFS is the plugin's rootfs/ and CVMFS2 the client program, usually
# /usr/bin/cvmfs2. The environment may set:
#
#   CVMFS_CONFIG  the client's configuration directory to copy in as
#                 /etc/cvmfs (default /etc/cvmfs)
#   CVMFS_USER    the user the client runs as; its passwd and group
#                 entries are copied in (default cvmfs)
#
# What goes in, at the paths the client looks for it:
#
#   - /usr/bin/cvmfs2, and cvmfs_talk from beside it when it is there
#   - the client's libraries (libcvmfs_*) from the dynamic linker's cache,
#     which the client loads by name when it starts, and its helpers in
#     ../libexec/cvmfs beside the program
#   - /bin/sh, through which the client reads its configuration files
#   - every shared library these need, as ldd resolves them here, the
#     dynamic linker, and this machine's /etc/ld.so.cache, whose paths
#     then hold the same files inside the plugin
#   - /etc/cvmfs, and /etc/passwd and /etc/group holding root and the
#     client's user
#   - the cache directory /var/lib/cvmfs, owned by that user
#
# The staged client is a copy: a change to the host's configuration or an
# upgrade of its cvmfs package reaches the plugin with the next build.
set -euo pipefail

die() {
  echo "stage-cvmfs-client: $*" >&2
  exit 1
}

(($# == 2)) || die "usage: stage-cvmfs-client.sh ROOTFS CVMFS2"
rootfs=$1
client=$2
config=${CVMFS_CONFIG:-/etc/cvmfs}
user=${CVMFS_USER:-cvmfs}

(($(id -u) == 0)) || die "staging the client needs root: its cache directory must belong to user $user"
[[ -d $rootfs ]] || die "the plugin's root file system $rootfs is not a directory"
[[ -f $client && -x $client ]] || die "the CernVM-FS client $client is not an executable file; install cvmfs or name its cvmfs2 with CVMFS_CLIENT"
[[ -d $config ]] || die "the CernVM-FS configuration $config is not a directory; set CVMFS_CONFIG to the client's configuration directory"
passwd_line=$(getent passwd "$user") || die "no user $user on this machine: the cvmfs package creates it; name the client's user with CVMFS_USER"
IFS=: read -r _ _ uid gid _ <<<"$passwd_line"
group_line=$(getent group "$gid") || die "no group with id $gid, the primary group of user $user"

# copy_file SOURCE DEST copies the file SOURCE names, symlinks followed,
# to DEST inside the root file system, keeping its mode.
copied=0
copy_file() {
  mkdir -p "$rootfs$(dirname "$2")"
  cp -L --preserve=mode "$1" "$rootfs$2"
  copied=$((copied + 1))
}

# is_elf FILE tells whether FILE is an ELF object, which may need shared
# libraries.
is_elf() {
  [[ -f $1 && $(head -c 4 "$1" | od -An -c | tr -d ' ') == 177ELF ]]
}

# Files staged so far, whose libraries are staged after them.
elves=()

stage() {
  copy_file "$1" "$2"
  if is_elf "$1"; then elves+=("$1"); fi
}

bindir=$(dirname "$client")
stage "$client" /usr/bin/cvmfs2
if [[ -x $bindir/cvmfs_talk ]]; then
  stage "$bindir/cvmfs_talk" /usr/bin/cvmfs_talk
else
  echo "stage-cvmfs-client: warning: no cvmfs_talk beside $client; the plugin cannot make a client remount" >&2
fi

libs=0
while read -r lib; do
  [[ -n $lib ]] || continue
  stage "$lib" "$lib"
  libs=$((libs + 1))
done < <(ldconfig -p | awk '$1 ~ /^libcvmfs_/ { print $NF }' | sort -u)
if ((libs == 0)); then
  echo "stage-cvmfs-client: warning: no libcvmfs_* libraries in the dynamic linker's cache (ldconfig -p); a real cvmfs2 loads them when it starts" >&2
fi

libexec=$(cd "$bindir/.." && pwd)/libexec/cvmfs
if [[ -d $libexec ]]; then
  while IFS= read -r -d '' f; do
    stage "$f" "/usr/libexec/cvmfs/${f#"$libexec"/}"
  done < <(find "$libexec" -type f -print0)
fi

stage "$(readlink -f /bin/sh)" /bin/sh

# ldd lists every library an object needs, those of its libraries
# included, each resolved as the dynamic linker resolves it here. A static
# program needs none.
for elf in "${elves[@]}"; do
  out=$(ldd "$elf" 2>&1) || {
    [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]] && continue
    die "ldd failed on $elf: $out"
  }
  if grep -q '=> not found' <<<"$out"; then
    die "$elf needs libraries this machine does not have: $(awk '/=> not found/ { printf "%s ", $1 }' <<<"$out")"
  fi
  while read -r dep; do
    [[ -e $rootfs$dep ]] || copy_file "$dep" "$dep"
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
done
if [[ -f /etc/ld.so.cache ]]; then
  copy_file /etc/ld.so.cache /etc/ld.so.cache
fi

# Symbolic links are followed: a link into the host's /usr/share or /etc
# would lead nowhere inside the plugin.
mkdir -p "$rootfs/etc/cvmfs"
cp -RL --preserve=mode,timestamps "$config/." "$rootfs/etc/cvmfs/"
{
  getent passwd 0
  [[ $uid == 0 ]] || echo "$passwd_line"
} >"$rootfs/etc/passwd"
{
  getent group 0
  [[ $gid == 0 ]] || echo "$group_line"
} >"$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
chmod 644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"

mkdir -p "$rootfs/var/lib/cvmfs"
chown "$uid:$gid" "$rootfs/var/lib/cvmfs"
chmod 700 "$rootfs/var/lib/cvmfs"

echo "staged $client into $rootfs as /usr/bin/cvmfs2, with $copied files in all, the configuration from $config and user $user ($uid:$gid)"
