#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the whole test suite on
# BATCHFIT_TEST_WORKERS processes (default 2, pytest-xdist; 0 runs it in this
# process). A throwaway PostgreSQL server (Debian's package, installed if
# missing) runs for the tests of `batchfit.data.sql` and is stopped at the
# end; where it cannot be started (no root, no package), those tests skip
# and say why, except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if bash scripts/postgres.sh start; then
    trap 'bash scripts/postgres.sh stop' EXIT
else
    echo "test.sh: no PostgreSQL server could be started; the SQL tests will skip" >&2
fi
.venv/bin/python -m pytest -q -p no:cacheprovider -n "${BATCHFIT_TEST_WORKERS:-2}" "$@"
