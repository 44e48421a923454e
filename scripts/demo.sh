#!/usr/bin/env bash
# The one-command demo: a private dockerd with the cvmfs-graphdriver plugin,
# a regular image made thin into a local directory that stands for
# /cvmfs/<repository>, and a container run from the thin image.
#
#   scripts/demo.sh          run the demo, leave the daemon up to play with
#   scripts/demo.sh --clean  stop the demo's daemon and plugin, remove its files
#
# It never touches the machine's own Docker: everything lives in $DEMO_DIR
# (default /tmp/cvmfs-demo) and the daemon listens on a socket there.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

DEMO_DIR=${DEMO_DIR:-/tmp/cvmfs-demo}
PLUGIN=cvmfsdemo
REPO=demo.cern.ch
SOCK=$DEMO_DIR/docker.sock
DOCKER=(/usr/bin/docker -H "unix://$SOCK")

say() { printf '\n== %s\n' "$*"; }

# stop_pid PIDFILE: end the process we started, by its pid.
stop_pid() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

clean() {
  stop_pid "$DEMO_DIR/docker.pid"
  stop_pid "$DEMO_DIR/plugin.pid"
  if [[ -d $DEMO_DIR ]]; then
    # Deepest mounts first; dockerd leaves a bind mount of its data root.
    { grep -F " $DEMO_DIR" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    rm -rf "$DEMO_DIR"
  fi
  rm -f "/run/docker/plugins/$PLUGIN.sock"
}

if [[ ${1:-} == --clean ]]; then
  clean
  echo "demo removed"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "the demo mounts overlays and runs dockerd: run it as root" >&2
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  echo "the demo builds the plugin with Go 1.26: none found in PATH or /usr/local/go/bin" >&2
  exit 1
fi

missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v dockerd >/dev/null 2>&1 && [[ -x /usr/bin/docker ]] || missing+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if ((${#missing[@]} > 0)); then
  say "installing ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    # Keep the packages from starting the machine's own dockerd.
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

say "building the plugin and docker2cvmfs"
make --no-print-directory build

clean
mkdir -p "$DEMO_DIR"/{cvmfs,state,data,exec,context}

say "starting the plugin and a private dockerd in $DEMO_DIR"
bin/cvmfs-graphdriver --socket "/run/docker/plugins/$PLUGIN.sock" \
  --cvmfs-root "$DEMO_DIR/cvmfs" --state-dir "$DEMO_DIR/state" \
  >"$DEMO_DIR/plugin.log" 2>&1 &
echo $! >"$DEMO_DIR/plugin.pid"
for _ in $(seq 50); do [[ -S /run/docker/plugins/$PLUGIN.sock ]] && break; sleep 0.1; done
echo '{}' >"$DEMO_DIR/daemon.json"
dockerd --experimental -s "$PLUGIN" --config-file "$DEMO_DIR/daemon.json" \
  --data-root "$DEMO_DIR/data" --exec-root "$DEMO_DIR/exec" \
  -H "unix://$SOCK" --pidfile "$DEMO_DIR/docker.pid" \
  --containerd-namespace cvmfsdemo --containerd-plugins-namespace cvmfsdemo-plugins \
  --iptables=false --ip-masq=false --bridge=none >"$DEMO_DIR/dockerd.log" 2>&1 &
for _ in $(seq 100); do "${DOCKER[@]}" info >/dev/null 2>&1 && break; sleep 0.2; done
"${DOCKER[@]}" info --format 'storage driver: {{.Driver}}'

say "making a regular image from local files (busybox and 64 MiB of data)"
rootfs=$DEMO_DIR/context/rootfs
mkdir -p "$rootfs/bin"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh ls cat echo wc du head md5sum; do ln -s busybox "$rootfs/bin/$applet"; done
tar -C "$rootfs" -cf "$DEMO_DIR/context/base.tar" .
"${DOCKER[@]}" import "$DEMO_DIR/context/base.tar" demo/base >/dev/null
head -c 64M /dev/urandom >"$DEMO_DIR/context/data.bin"
cat >"$DEMO_DIR/context/Dockerfile" <<'DOCKERFILE'
FROM demo/base
COPY data.bin /data/big.bin
RUN echo "hello from a thin image" > /data/hello.txt && echo scratch > /data/tmp.txt
RUN rm /data/tmp.txt
CMD ["sh", "-c", "cat /data/hello.txt; ls /data"]
DOCKERFILE
DOCKER_BUILDKIT=0 "${DOCKER[@]}" build -q --network none -t demo/app "$DEMO_DIR/context" >/dev/null

say "making it thin: layers into $DEMO_DIR/cvmfs/$REPO (standing for /cvmfs/$REPO)"
DOCKER_HOST="unix://$SOCK" bin/docker2cvmfs make-thin -i demo/app -o demo/app:thin \
  -r "$REPO" --cvmfs-root "$DEMO_DIR/cvmfs" --progress plain

say "running the thin image"
"${DOCKER[@]}" run --rm --network none demo/app:thin

fat=$("${DOCKER[@]}" save demo/app:latest | wc -c)
thin=$("${DOCKER[@]}" save demo/app:thin | wc -c)
say "what a registry or a node moves for each image (docker save)"
printf '  regular image demo/app:latest  %12d bytes\n' "$fat"
printf '  thin image    demo/app:thin    %12d bytes\n' "$thin"
printf '  the thin image lists its layers in %s\n' "$DEMO_DIR/cvmfs/$REPO/layers/"

cat <<EOF

The demo daemon keeps running. Try it:
  /usr/bin/docker -H unix://$SOCK images
  /usr/bin/docker -H unix://$SOCK run --rm -it demo/app:thin sh
Logs: $DEMO_DIR/dockerd.log, $DEMO_DIR/plugin.log
Clean up (stops the daemon and plugin, removes $DEMO_DIR):
  make demo-clean
EOF
