#!/usr/bin/env bash
# Bring a clean clone to a runnable state, idempotently: Debian packages, npm packages, build.
# Each step says what it does and is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'clonebox: %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/install-deps.sh
else
  say "not root: skipping Debian package installation (the lab needs root anyway)"
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.clonebox-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-fund --no-audit --loglevel=error
  echo "$want" > "$stamp"
else
  say "npm packages up to date"
fi

# The in-process libvirt binding (npm ci builds it through the install script; a clone whose
# node_modules were already current may not have it yet). Without it, clonebox falls back to virsh.
if [ ! -f native/build/Release/clonebox_libvirt.node ]; then
  say "building the native libvirt binding"
  sh native/build.sh || say "native libvirt binding not built; clonebox will use virsh"
fi

# Rebuild when any source is newer than the build.
if [ ! -f dist/.built ] || [ -n "$(find src package.json tsconfig.json tsconfig.build.json -newer dist/.built -print -quit)" ]; then
  say "building (tsc, oclif manifest)"
  rm -rf dist
  npx tsc -p tsconfig.build.json
  OCLIF_SKIP_NEW_VERSION_CHECK=true npx oclif manifest >/dev/null
  touch dist/.built
else
  say "build up to date"
fi
