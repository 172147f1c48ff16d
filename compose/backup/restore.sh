#!/usr/bin/env bash
# Restores a dump made by backup.sh (pg_dump -Fc) into a database of the same server.
#
#   restore.sh FILE DBNAME             into a new database DBNAME (refused if it exists):
#                                      look at a backup beside the live database
#   restore.sh --replace FILE DBNAME   replaces DBNAME: the dump goes into a temporary
#                                      database first; only when that succeeded is DBNAME
#                                      dropped (its connections are terminated) and the new
#                                      one renamed to DBNAME. A failed restore leaves DBNAME
#                                      untouched. Stop the aisha roles first (deploy.sh
#                                      restore does all of it).
#
# Environment: DATABASE_URL, a URL of any database on the server
# (postgres://user:password@host:port/db) — server and credentials are taken from it; or,
# when it is unset, libpq's PG* variables. CREATE/DROP run in the maintenance database
# `postgres`, so the user must be allowed to create databases (the compose `aisha` user is the
# server's superuser). Restored objects belong to that user (--no-owner --no-privileges).
set -euo pipefail

say() { printf '[restore] %s\n' "$*"; }
die() { say "error: $*" >&2; exit 1; }
usage() { die "usage: restore.sh [--replace] FILE DBNAME"; }

replace=0
if [ "${1:-}" = "--replace" ]; then replace=1; shift; fi
[ $# -eq 2 ] || usage
file=$1 db=$2
[ -r "$file" ] || die "cannot read $file"
# Plain names only: they are spliced into SQL.
[[ "$db" =~ ^[a-z_][a-z0-9_]{0,47}$ ]] || die "DBNAME must match [a-z_][a-z0-9_]*, at most 48 characters: $db"

# A connection string for database $1.
conn() {
    if [ -n "${DATABASE_URL:-}" ]; then
        local base="${DATABASE_URL%%\?*}"
        local query="${DATABASE_URL#"$base"}"
        printf '%s/%s%s' "${base%/*}" "$1" "$query"
    else
        printf 'dbname=%s' "$1"
    fi
}
maint() { psql "$(conn postgres)" -v ON_ERROR_STOP=1 -qAt "$@"; }
exists() { [ "$(maint -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]; }

pg_restore --list "$file" >/dev/null 2>&1 || die "$file is not a pg_dump custom-format archive"

target=$db
if [ "$replace" = 1 ]; then
    target="${db}_restoring_$$"
    exists "$target" && maint -c "DROP DATABASE \"$target\""
else
    exists "$db" && die "database $db exists; restore into a new name or use --replace"
fi

maint -c "CREATE DATABASE \"$target\""
cleanup() { maint -c "DROP DATABASE IF EXISTS \"$target\" WITH (FORCE)" || true; }
trap cleanup ERR INT TERM
say "restoring $file into $target"
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
    --dbname="$(conn "$target")" "$file"

# From here on the restored copy is kept whatever happens.
trap - ERR INT TERM
if [ "$replace" = 1 ]; then
    say "replacing $db"
    maint -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
    maint -c "ALTER DATABASE \"$target\" RENAME TO \"$db\"" \
        || die "the restored copy is database $target; rename it to $db by hand"
fi

tables=$(psql "$(conn "$db")" -qAt -c "SELECT count(*) FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')")
say "done: $db has $tables tables"
