#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check service client tests benchmarks
ruff format --check service client tests benchmarks
mypy
