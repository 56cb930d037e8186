#!/usr/bin/env bash
# Sets up what is missing, then runs typecheck, lint, the packaging check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run typecheck
npm run lint
npm run packcheck
exec npx vitest run "$@"
