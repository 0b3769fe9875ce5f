#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages, npm dependencies, the native
# fake vmcompute library, and the TypeScript build. Quick when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: the container stack, and containerd's .proto files for `npm run gen`; for images a
# registry and image tools (tests build their own images; apache2-utils for the registry tests' htpasswd), for networking the CNI plugins and iptables,
# tini for `init`, docker.io for its docker CLI (a client of `ctrd serve`; its dockerd is the bench's peer), and
# golang-github-containers-common for /usr/share/containers/seccomp.json (`ctrd serve`'s default seccomp profile).
need_pkgs=()
for pkg in containerd runc crun busybox-static golang-github-containerd-containerd-dev \
  golang-github-gogo-protobuf-dev golang-github-gogo-googleapis-dev golang-github-containerd-cgroups-dev \
  criu gcc make openssl docker-registry apache2-utils umoci skopeo containernetworking-plugins iptables iproute2 tini docker.io \
  golang-github-containers-common; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing packages: ${need_pkgs[*]} (run as root, or install them yourself)"
    exit 1
  fi
  say "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# npm dependencies: only when the lock file changed since the last install.
stamp=node_modules/.setup-lock-hash
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > "$stamp"
fi

# The fake vmcompute library (a Linux stand-in for Windows' vmcompute.dll, for the local backend's tests).
if [ -f native/fake-vmcompute/Makefile ]; then
  make -s -C native/fake-vmcompute
fi

# ctrd-logger: the log driver containerd's shim runs for containers started with a log.
make -s -C native/ctrd-logger

# fifo.node: mkfifo(3) for the remote backend's stdio (Node has none; without it, mkfifo(1) per FIFO).
make -s -C native/fifo

# network.node: netns files by system calls, CNI plugins started without forking Node (without it,
# unshare(1) and umount(1) per container, and child_process).
make -s -C native/network

# The library (tsc) and the bundled ctrd (esbuild): rebuilt when any source is newer than the build.
if [ ! -f dist/.build-stamp ] || [ -n "$(find src tsconfig.json tsconfig.build.json package.json scripts/build.js -newer dist/.build-stamp -print -quit)" ]; then
  say "building TypeScript"
  rm -rf dist
  node scripts/build.js
  touch dist/.build-stamp
fi
