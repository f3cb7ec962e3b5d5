#!/usr/bin/env bash
# The project's checks, as CI runs them: lint, types, then every test (integration tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lint.sh
python -m pytest "$@"
