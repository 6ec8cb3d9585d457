#!/usr/bin/env bash
# The README's test command (`npm test`): set up, start the lab, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "clonebox: type-checking"
npx tsc -p tsconfig.json --noEmit
echo "clonebox: running tests (the lab starts in vitest's global setup)"
exec npx vitest run "$@"
