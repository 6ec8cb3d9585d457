#!/bin/sh
# Builds native/build/Release/clonebox_libvirt.node, offline.
#
#   sh native/build.sh            (or: npm run build:native)
#
# Needs a C++17 compiler, make, python3, pkg-config and libvirt-dev. node-gyp must not download
# Node's headers (no internet): the project .npmrc sets nodedir=/usr for npm/npx runs, and when
# run outside npm this script points node-gyp at the running Node's own headers
# (<prefix>/include/node, present in distro packages and the official tarballs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

if ! pkg-config --exists libvirt libvirt-qemu 2>/dev/null; then
  echo "clonebox: cannot build the native libvirt binding: pkg-config finds no libvirt/libvirt-qemu (install pkg-config and libvirt-dev)" >&2
  exit 1
fi

if ! (cd "$root" && node -e "require.resolve('node-addon-api')" 2>/dev/null); then
  echo "clonebox: cannot build the native libvirt binding: node-addon-api is not installed (it is a dependency: npm install)" >&2
  exit 1
fi

# node-gyp: the project's own, else the one npm runs scripts with, else the one bundled with npm.
node_gyp=$(cd "$root" && node -p "require.resolve('node-gyp/bin/node-gyp.js')" 2>/dev/null) || node_gyp=${npm_config_node_gyp:-}
if [ -z "$node_gyp" ] && npm_cli=$(command -v npm 2>/dev/null); then
  candidate=$(dirname "$(dirname "$(readlink -f "$npm_cli")")")/node_modules/node-gyp/bin/node-gyp.js
  [ -f "$candidate" ] && node_gyp=$candidate
fi
if [ -z "$node_gyp" ]; then
  echo "clonebox: cannot build the native libvirt binding: node-gyp not found (npm install --save-dev node-gyp)" >&2
  exit 1
fi

if [ -z "${npm_config_nodedir:-}" ]; then
  prefix=$(node -p "require('path').resolve(process.execPath, '../..')")
  if [ -f "$prefix/include/node/node_api.h" ]; then
    set -- --nodedir="$prefix" "$@"
  fi
fi

exec node "$node_gyp" rebuild --directory "$here" "$@"
