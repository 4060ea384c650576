#!/usr/bin/env bash
# Prepares a fresh clone: installs the npm packages, then makes sure Dawn finds a WebGPU adapter.
# Where none exists (a machine without a GPU), installs Mesa's software Vulkan driver, lavapipe.
# Debian 12's own Mesa 22.3 is refused by Dawn; Mesa >= 24 from bookworm-backports works
# (../shared/DESIGN.md §5). Also installs Debian's chromium for the browser tests. Idempotent: a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/densenet-wgsl-runtime}"
mkdir -p "$XDG_RUNTIME_DIR"

# The browser tests (test/web_pages.test.ts) drive Debian's chromium; no browser is downloaded from elsewhere.
if [ -z "${CHROMIUM_PATH:-}" ] && ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "+ apt-get install -y chromium (for the browser tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1 ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }
  else
    echo "setup: chromium is missing, so the browser tests will fail; as root run: apt-get install -y chromium (or set CHROMIUM_PATH)" >&2
  fi
fi

if node scripts/probe-adapter.mjs >/dev/null 2>&1; then
  node scripts/probe-adapter.mjs
  exit 0
fi

echo "setup: Dawn found no WebGPU adapter; the software Vulkan driver (Mesa lavapipe >= 24) is needed."
commands=()
if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  commands+=("echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list")
  commands+=("apt-get update")
  commands+=("DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1")
elif [ -r /etc/os-release ] && . /etc/os-release && { [ "${ID:-}" = debian ] || [ "${ID:-}" = ubuntu ] || [[ "${ID_LIKE:-}" == *debian* ]]; }; then
  commands+=("apt-get update")
  commands+=("DEBIAN_FRONTEND=noninteractive apt-get install -y mesa-vulkan-drivers libvulkan1")
else
  echo "setup: this is not Debian or Ubuntu; install Mesa's lavapipe (>= 24) and the Vulkan loader with your package manager." >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: not root, so nothing was installed. Run these as root, then run this script again:" >&2
  printf '  %s\n' "${commands[@]}" >&2
  exit 1
fi
for c in "${commands[@]}"; do echo "+ $c"; bash -c "$c"; done

if ! node scripts/probe-adapter.mjs; then
  echo "setup: the driver is installed but Dawn still finds no adapter; run 'node scripts/probe-adapter.mjs' to see Dawn's messages." >&2
  exit 1
fi
