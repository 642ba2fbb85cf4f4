#!/bin/bash
# pg.sh - a throw-away PostgreSQL cluster for the tests (installs nothing: scripts/deps.sh does).
#   scripts/pg.sh start [DIR]   initdb in DIR (default: a new temp dir) as an unprivileged user,
#                               start postgres on a free 127.0.0.1 port (unix socket in DIR),
#                               create database `keyward`; prints the libpq URL on stdout.
#   scripts/pg.sh url DIR       print the URL of the cluster in DIR
#   scripts/pg.sh stop DIR      stop it and remove DIR
#   scripts/pg.sh down DIR      stop it abruptly (-m immediate: like a crash), keep DIR
#   scripts/pg.sh up DIR        start it again on the same port (after down)
# Runs initdb/postgres as the current user, or when root as `keyward-test` (created if
# missing: PostgreSQL refuses to run as root). Everything it makes lives under DIR.
set -eu
cmd=${1:-}
dir=${2:-}

bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    echo "pg.sh: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin" \
        "(run scripts/deps.sh)" >&2
    return 1
}

as_user() { # run "$@" as the cluster's owner
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u keyward-test -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

url_of() {
    echo "postgresql://keyward@127.0.0.1:$(cat "$1/port")/keyward"
}

case "$cmd" in
start)
    B=$(bindir)
    if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/kw-pg.XXXXXX); fi
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id keyward-test >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin keyward-test
        chown keyward-test "$dir"
        runuser -u keyward-test -- test -w "$dir" || {
            echo "pg.sh: $dir is not reachable by keyward-test (a parent directory is private);" \
                "use a directory directly under /tmp" >&2
            exit 1
        }
    fi
    chmod 700 "$dir"
    port=$(free_port)
    echo "$port" >"$dir/port"
    as_user "$B/initdb" -D "$dir/data" -U keyward --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Test cluster: durable commits kept (fsync on) so kill -9 tests mean something.
    as_user "$B/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=300 -c shared_buffers=64MB" \
        start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
    as_user "$B/createdb" -h "$dir" -p "$port" -U keyward keyward
    echo "$dir" >"$dir/dir"
    url_of "$dir"
    ;;
url)
    [ -n "$dir" ] && [ -f "$dir/port" ] || { echo "usage: pg.sh url DIR" >&2; exit 2; }
    url_of "$dir"
    ;;
down)
    [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "usage: pg.sh down DIR" >&2; exit 2; }
    as_user "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
up)
    [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "usage: pg.sh up DIR" >&2; exit 2; }
    port=$(cat "$dir/port")
    as_user "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=300 -c shared_buffers=64MB" \
        start >/dev/null || { tail -20 "$dir/postgres.log" >&2; exit 1; }
    ;;
stop)
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "usage: pg.sh stop DIR" >&2; exit 2; }
    B=$(bindir)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_user "$B/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg.sh start [DIR] | url DIR | down DIR | up DIR | stop DIR" >&2
    exit 2
    ;;
esac
