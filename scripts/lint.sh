#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check service client tests benchmarks scripts .github/actions
ruff format --check service client tests benchmarks scripts .github/actions
mypy
