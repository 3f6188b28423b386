#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/train_on_batch_loop.py "$@"
