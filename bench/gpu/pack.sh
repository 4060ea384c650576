#!/usr/bin/env bash
# Packs what a bare x86-64 Linux machine with an NVIDIA GPU and no internet needs to run
# bench/gpu/run.sh into one folder (default .gpu/, git-ignored), under 64 MiB:
#   node.xz      this machine's node (>= 20), xz -6
#   app.tar.xz   app/dist/*.js (+ .map): the CLI, dist/bench.js, dist/gpu_logits.js; app/package.json;
#                app/node_modules: only what those bundles import at run time (webgpu's JS and its
#                linux-x64 Dawn addon, TensorFlow.js core/webgpu/cpu and their dependencies, pngjs,
#                jpeg-js, protobufjs for ONNX export; not onnxruntime-node, 288 MB: bench inference's
#                ONNX Runtime row says it is not available there); no TypeScript, esbuild, type declarations or source maps of packages
#   debs/*.deb   the Vulkan loader and GL vendor-neutral dispatch (device/README.md's list)
#   MANIFEST.txt what is inside, sizes, sha256, the commit packed
# Usage (repo root): bash bench/gpu/pack.sh [--no-build] [--list] [--check DIR]
#   --no-build  use dist/ as it is (default: scripts/build.mjs, then bench/gpu/build.mjs)
#   --list      print the files app.tar.xz would hold and stop
#   --check DIR only check DIR's total size against the limit
# Environment: GPU_PACK_DIR (default .gpu), NODE_BIN (default: node on PATH), DEBS_DIR (take the
# .deb files from there instead of apt-get download), GPU_PACK_LIMIT_MIB (default 64), GPU_PACK_XZ
# (xz preset, default 6; the tests use 0 for speed).
set -euo pipefail

PACK_DIR=${GPU_PACK_DIR:-.gpu}
LIMIT_MIB=${GPU_PACK_LIMIT_MIB:-64}
XZ_LEVEL=${GPU_PACK_XZ:-6}
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
# npm packages the bundles import at run time, with their own dependencies (package.json "dependencies").
RUNTIME_PACKAGES=(webgpu pngjs jpeg-js protobufjs @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu @tensorflow/tfjs-backend-cpu
  long seedrandom node-fetch whatwg-url tr46 webidl-conversions)

die() { echo "pack.sh: $*" >&2; exit 1; }

check_size() { # DIR [NAME]: prints the total and fails above the limit
  local bytes limit name=${2:-$1}
  bytes=$(find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  limit=$((LIMIT_MIB * 1024 * 1024))
  echo "pack.sh: $name holds $bytes bytes ($(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB; limit $LIMIT_MIB MiB)"
  [ "$bytes" -le "$limit" ] || die "$name is over the $LIMIT_MIB MiB limit: $bytes bytes > $limit"
}

# The files of app/ (paths relative to the repo root), one per line.
app_files() {
  ls dist/*.js
  ls dist/*.js.map 2>/dev/null || true
  echo package.json
  local p
  for p in "${RUNTIME_PACKAGES[@]}"; do
    [ -f "node_modules/$p/package.json" ] || die "node_modules/$p is missing: run npm ci (or bash scripts/setup.sh) first"
    if [ "$p" = webgpu ]; then
      # Only the JS, its package.json, the licence and the linux-x64 addon: the other platforms' addons are 100 MB.
      find -L node_modules/webgpu -maxdepth 1 -type f \( -name '*.js' -o -name package.json -o -name 'LICENSE*' \)
      echo node_modules/webgpu/dist/linux-x64/dawn.node
    else
      find -L "node_modules/$p" -type f ! -name '*.map' ! -name '*.d.ts' ! -name '*_test.js' ! -name '*.md' ! -path '*/node_modules/@webgpu/*'
    fi
  done
}

BUILD=1
case "${1:-}" in
  --check) [ -n "${2:-}" ] || die "--check needs a folder"; check_size "$2"; exit 0 ;;
  --list) BUILD=0 ;;
  --no-build) BUILD=0 ;;
  '') ;;
  *) die "unknown argument \"$1\" (use --no-build, --list or --check DIR)" ;;
esac
[ -f bench/gpu/pack.sh ] || die "run me from the repository root (bash bench/gpu/pack.sh)"

if [ "$BUILD" = 1 ]; then
  # A filter that matches no test file: the CLI and bench bundles only.
  node scripts/build.mjs __no_test_files__
  node bench/gpu/build.mjs
fi
for f in dist/cli.js dist/bench.js dist/gpu_logits.js; do [ -f "$f" ] || die "$f is missing: run without --no-build (or npm run build && node bench/gpu/build.mjs)"; done
if [ "${1:-}" = --list ]; then app_files; exit 0; fi

NODE_BIN=${NODE_BIN:-$(command -v node || true)}
[ -x "$NODE_BIN" ] || die "no node binary (set NODE_BIN)"
# The binary must run there: x86-64 Linux, node >= 20 (the bundles target node20).
read -r node_version node_platform < <("$NODE_BIN" -p 'process.versions.node + " " + process.platform + "-" + process.arch' 2>/dev/null || echo "unknown unknown")
[ "$node_platform" = linux-x64 ] || die "$NODE_BIN is $node_platform; the GPU machines are linux-x64"
[ "${node_version%%.*}" -ge 20 ] 2>/dev/null || die "$NODE_BIN is node $node_version; node >= 20 is needed"

mkdir -p "$PACK_DIR"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

echo "pack.sh: node $node_version from $NODE_BIN"
xz "-$XZ_LEVEL" -T2 -c "$NODE_BIN" > "$stage/node.xz"

echo "pack.sh: app (dist bundles and runtime node_modules)"
tree=$(mktemp -d)
trap 'rm -rf "$stage" "$tree"' EXIT
mkdir -p "$tree/app"
app_files | while read -r f; do mkdir -p "$tree/app/$(dirname "$f")"; cp -L "$f" "$tree/app/$f"; done
tar -C "$tree" -cf - app | xz "-$XZ_LEVEL" -T2 > "$stage/app.tar.xz"
rm -rf "$tree"

mkdir -p "$stage/debs"
if [ -n "${DEBS_DIR:-}" ]; then
  cp "$DEBS_DIR"/*.deb "$stage/debs/" || die "no .deb files in DEBS_DIR=$DEBS_DIR"
else
  echo "pack.sh: apt-get download ${DEBS[*]} (amd64)"
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  apt-get "${apt_opts[@]}" update -qq >/dev/null || die "apt-get update failed (no network?): download ${DEBS[*]} elsewhere and set DEBS_DIR"
  (cd "$stage/debs" && apt-get "${apt_opts[@]}" download "${DEBS[@]}" >/dev/null 2>&1) || die "apt-get download ${DEBS[*]} failed; set DEBS_DIR to a folder holding them"
  rm -rf "$lists"
fi

{
  echo "densenet-wgsl GPU pack, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "node $node_version; app: $(app_files | wc -l) files; unpack and run: bash bench/gpu/run.sh"
  (cd "$stage" && find . -type f ! -name MANIFEST.txt -printf '%P\n' | sort | while read -r f; do echo "$(stat -c %s "$f") $(sha256sum "$f" | cut -c1-16) $f"; done)
} > "$stage/MANIFEST.txt"

cat "$stage/MANIFEST.txt"
check_size "$stage" "$PACK_DIR"
rm -rf "$PACK_DIR"/node.xz "$PACK_DIR"/app.tar.xz "$PACK_DIR"/debs "$PACK_DIR"/MANIFEST.txt
cp -r "$stage"/. "$PACK_DIR"/
echo "pack.sh: wrote $PACK_DIR; on the GPU machine (repo root, $PACK_DIR beside it): bash bench/gpu/run.sh"
