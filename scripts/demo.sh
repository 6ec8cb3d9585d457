#!/usr/bin/env bash
# `npm run demo`: start the local lab of real "VMs" and run a real health check against all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "clonebox: the demo lab needs root (network namespaces); run it as root, e.g. sudo npm run demo" >&2
  exit 2
fi
bash scripts/setup.sh
echo "clonebox: starting the lab (network namespaces with sshd, nginx, redis, postgres)"
bash test/lab/fleet.sh up
lab=${CLONEBOX_LAB_DIR:-$PWD/.lab}
echo "clonebox: running: clonebox health check --all --config $lab/clonebox.yaml"
echo
set +e
node bin/clonebox.js health check --all --config "$lab/clonebox.yaml" "$@"
code=$?
set -e
echo
echo "clonebox: exit code $code (0 healthy, 1 degraded, 2 unhealthy, 3 unknown). The lab stays up; stop it with: bash test/lab/fleet.sh down"
exit 0
