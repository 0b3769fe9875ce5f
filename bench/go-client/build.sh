#!/usr/bin/env bash
# Builds bench/go-client offline from Debian's golang-go and containerd 1.6 sources (GOPATH mode), installing
# them when missing. Only the bench needs Go; npm test never runs this. Prints the binary's path.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
out="${1:?usage: build.sh OUTDIR}"
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/containerd/containerd ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-containerd-containerd-dev >/dev/null
fi
mkdir -p "$out/src/go-client"
cp "$here/main.go" "$out/src/go-client/"
(cd "$out" && GO111MODULE=off GOPATH="$out:/usr/share/gocode" GOCACHE="$out/cache" go build -o "$out/go-client" go-client)
echo "$out/go-client"
