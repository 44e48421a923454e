#!/usr/bin/env bash
# Installs what `make bench` needs on Debian 12, as root: dockerd and its
# client, a registry, a static busybox, sshd and sshfs for the repository's
# file server, gnuplot for the plots, debootstrap for the realistic image,
# and tc. The system's dockerd and sshd are kept from starting: the
# benchmark starts private ones.
set -euo pipefail

want=(docker.io docker-registry busybox-static openssh-server openssh-client sshfs gnuplot-nox debootstrap iproute2)
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
