#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the demo: `batchfit demo`
# generates a 2-million-row housing CSV with a known noise floor, streams it
# through fit with a validation split and reports the error against the floor.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --rows 200000`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/batchfit demo "$@"
