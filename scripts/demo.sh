#!/usr/bin/env bash
# Sets up what is missing, then runs the demo in examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx tsx examples/demo.ts "$@"
