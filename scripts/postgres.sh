#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of `batchfit.data.sql`.
#
#   bash scripts/postgres.sh start   # prints BATCHFIT_TEST_PG=postgresql://...
#   bash scripts/postgres.sh stop
#
# `start` installs Debian's `postgresql` package when no server binaries are
# found (apt-get; run as root), initialises a cluster in a temporary folder
# (as the `postgres` user: initdb refuses root), starts it on 127.0.0.1 at a
# free port with its Unix socket in that folder, creates the database
# `batchfit`, and writes the URI to $BATCHFIT_PG_DIR/uri, which the tests read
# when BATCHFIT_TEST_PG is unset. Local connections are trusted, except for
# the role `batchfit_pw` (password `batchfit-secret-pw`), which must give its
# password: the tests check that PGPASSWORD works and that the password
# never leaks into messages or saved state.
set -euo pipefail
DIR=${BATCHFIT_PG_DIR:-/tmp/batchfit-pg}
RUNAS=postgres

bindir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
        echo "postgres.sh: installing Debian's postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2 || true
        apt-get install -y -q postgresql >&2
        found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    echo "$found"
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$RUNAS" -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin port
    bin=$(bindir)
    if [ -f "$DIR/uri" ] && as_pg "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        echo "BATCHFIT_TEST_PG=$(cat "$DIR/uri")"
        return
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown "$RUNAS" "$DIR"
    as_pg "$bin/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; exit 1; }
    # the password role first: pg_hba.conf is read top to bottom
    printf 'host all batchfit_pw 127.0.0.1/32 scram-sha-256\nlocal all batchfit_pw scram-sha-256\n' \
        | cat - "$DIR/data/pg_hba.conf" >"$DIR/hba.tmp"
    [ "$(id -u)" = 0 ] && chown "$RUNAS" "$DIR/hba.tmp"
    as_pg cp "$DIR/hba.tmp" "$DIR/data/pg_hba.conf"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR -c fsync=off -c full_page_writes=off" start >&2 \
        || { cat "$DIR/server.log" >&2; exit 1; }
    as_pg "$bin/psql" -h "$DIR" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE DATABASE batchfit" \
        -c "CREATE ROLE batchfit_pw LOGIN PASSWORD 'batchfit-secret-pw'" \
        -c "GRANT ALL ON DATABASE batchfit TO batchfit_pw" >&2
    as_pg "$bin/psql" -h "$DIR" -p "$port" -U postgres -d batchfit -v ON_ERROR_STOP=1 -q \
        -c "GRANT ALL ON SCHEMA public TO batchfit_pw" >&2
    echo "postgresql://postgres@127.0.0.1:$port/batchfit" >"$DIR/uri"
    chmod a+r "$DIR/uri"
    echo "BATCHFIT_TEST_PG=$(cat "$DIR/uri")"
}

stop() {
    local bin
    [ -d "$DIR/data" ] || return 0
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    as_pg "$bin/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
