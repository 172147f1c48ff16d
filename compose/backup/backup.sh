#!/usr/bin/env bash
# Dumps the database with `pg_dump -Fc` into BACKUP_DIR and keeps the BACKUP_KEEP newest dumps.
#
#   backup.sh [once]   one dump now, then retention (the default)
#   backup.sh loop     a dump whenever the newest one is BACKUP_INTERVAL_SECS old, forever
#                      (the compose `backup` service)
#   backup.sh health   exit 0 when the newest dump is younger than 2 x BACKUP_INTERVAL_SECS
#                      (the service's healthcheck)
#
# Environment: DATABASE_URL (postgres://user:password@host:port/db; or libpq's PG* variables
# when it is unset), BACKUP_DIR (/backups), BACKUP_KEEP (14), BACKUP_INTERVAL_SECS (86400),
# BACKUP_PREFIX (aisha). A dump is written under a temporary name, checked with
# `pg_restore --list` and only then renamed to PREFIX-YYYYmmddTHHMMSSZ.dump, so a file with
# that name is always complete. Restore one with restore.sh.
set -euo pipefail

BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_KEEP="${BACKUP_KEEP:-14}"
BACKUP_INTERVAL_SECS="${BACKUP_INTERVAL_SECS:-86400}"
BACKUP_PREFIX="${BACKUP_PREFIX:-aisha}"

say() { printf '[backup] %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { say "error: $*" >&2; exit 1; }

case "$BACKUP_KEEP" in '' | *[!0-9]* | 0) die "BACKUP_KEEP must be a whole number >= 1, got '$BACKUP_KEEP'" ;; esac
case "$BACKUP_INTERVAL_SECS" in '' | *[!0-9]* | 0) die "BACKUP_INTERVAL_SECS must be a whole number >= 1" ;; esac
case "$BACKUP_PREFIX" in '' | *[!A-Za-z0-9_-]*) die "BACKUP_PREFIX may hold letters, digits, _ and - only" ;; esac

# The dumps, oldest first (the names sort by time).
dumps() {
    local f
    for f in "$BACKUP_DIR/$BACKUP_PREFIX"-*.dump; do
        [ -e "$f" ] && printf '%s\n' "$f"
    done
    return 0
}

backup_once() {
    mkdir -p "$BACKUP_DIR"
    # Leftovers of a dump that was interrupted.
    rm -f "$BACKUP_DIR/.$BACKUP_PREFIX"-*.partial
    local name tmp target
    name="$BACKUP_PREFIX-$(date -u +%Y%m%dT%H%M%SZ).dump"
    tmp="$BACKUP_DIR/.$name.partial"
    target="$BACKUP_DIR/$name"
    local db=()
    [ -n "${DATABASE_URL:-}" ] && db=(--dbname="$DATABASE_URL")
    say "dumping to $target"
    pg_dump --format=custom "${db[@]}" --file="$tmp"
    pg_restore --list "$tmp" >/dev/null || { rm -f "$tmp"; die "the dump does not read back"; }
    mv -f "$tmp" "$target"
    say "done: $target ($(du -h "$target" | cut -f1))"

    local all=() old
    mapfile -t all < <(dumps)
    if [ "${#all[@]}" -gt "$BACKUP_KEEP" ]; then
        for old in "${all[@]:0:${#all[@]}-BACKUP_KEEP}"; do
            say "retention: removing $old"
            rm -f "$old"
        done
    fi
}

loop() {
    local sleeper=""
    # The sleep in the background goes too (without an init process it would outlive us).
    trap 'say "stopping"; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT
    say "every ${BACKUP_INTERVAL_SECS}s into $BACKUP_DIR, keeping $BACKUP_KEEP"
    while :; do
        local newest wait_secs=0 now
        newest=$(dumps | tail -n 1)
        if [ -n "$newest" ]; then
            now=$(date +%s)
            wait_secs=$(( $(stat -c %Y "$newest") + BACKUP_INTERVAL_SECS - now ))
        fi
        if [ "$wait_secs" -gt 0 ]; then
            say "newest dump is $(basename "$newest"); next in ${wait_secs}s"
            sleep "$wait_secs" &
            sleeper=$!
            wait "$sleeper"
            continue
        fi
        # A separate process: `set -e` holds inside it, and a failure does not end the loop.
        if ! bash "${BASH_SOURCE[0]}" once; then
            say "the dump failed; trying again in 300s"
            sleep 300 &
            sleeper=$!
            wait "$sleeper"
        fi
    done
}

health() {
    local newest age
    newest=$(dumps | tail -n 1)
    [ -n "$newest" ] || { echo "no dump in $BACKUP_DIR"; exit 1; }
    age=$(( $(date +%s) - $(stat -c %Y "$newest") ))
    if [ "$age" -ge $((2 * BACKUP_INTERVAL_SECS)) ]; then
        echo "the newest dump, $(basename "$newest"), is ${age}s old"
        exit 1
    fi
    echo "$(basename "$newest"), ${age}s old"
}

case "${1:-once}" in
    once) backup_once ;;
    loop) loop ;;
    health) health ;;
    *) die "usage: backup.sh [once|loop|health]" ;;
esac
