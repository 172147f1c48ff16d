#!/bin/sh
# Copies the blob bucket and the database dumps to the backup destination with rclone (compose
# service `mirror`, image rclone/rclone: POSIX sh, no bash).
#
#   mirror.sh [once]   one copy now, then retention (the default)
#   mirror.sh loop     a copy now and then every BACKUP_INTERVAL_SECS, forever
#   mirror.sh health   exit 0 when the last successful copy is younger than
#                      2 x BACKUP_INTERVAL_SECS (the service's healthcheck)
#   mirror.sh restore  the other way round: the destination's blobs/ copied into the bucket
#                      (rclone copy: adds and overwrites, never deletes)
#
# Source: the bucket S3_BUCKET at S3_ENDPOINT with S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY
# (aisha's own key: listing and reading the bucket is all this needs) and the dumps of
# BACKUP_DIR (backup.sh's; files starting with a dot, dumps being written, are skipped).
# Destination: the S3 bucket BACKUP_S3_BUCKET at BACKUP_S3_ENDPOINT with
# BACKUP_S3_ACCESS_KEY_ID / BACKUP_S3_SECRET_ACCESS_KEY (BACKUP_S3_REGION) when those are
# set, else the directory MIRROR_DIR. Laid out as:
#
#   blobs/…                   the bucket as it is now
#   postgres/aisha-….dump     the dumps BACKUP_DIR holds now
#   deleted/<time>/blobs/…    what the copy made at <time> (YYYYmmddTHHMMSSZ, UTC) removed
#   deleted/<time>/postgres/… or replaced there: objects deleted from the bucket, dumps that
#                             backup.sh's retention removed. Kept BACKUP_MIRROR_KEEP_DAYS
#                             days (30), by the time in the name, then purged.
#
# Objects are compared by size and checksum. MIRROR_STATE (/tmp/aisha-mirror.ok) holds the
# time of the last successful copy.
set -eu

BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_INTERVAL_SECS="${BACKUP_INTERVAL_SECS:-86400}"
BACKUP_MIRROR_KEEP_DAYS="${BACKUP_MIRROR_KEEP_DAYS:-30}"
MIRROR_STATE="${MIRROR_STATE:-/tmp/aisha-mirror.ok}"
# Every remote comes from the environment: no config file to read or to miss.
export RCLONE_CONFIG="${RCLONE_CONFIG:-/dev/null}"

say() { echo "[mirror] $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }
die() { say "error: $*" >&2; exit 1; }

case "$BACKUP_INTERVAL_SECS" in '' | *[!0-9]* | 0) die "BACKUP_INTERVAL_SECS must be a whole number >= 1" ;; esac
case "$BACKUP_MIRROR_KEEP_DAYS" in '' | *[!0-9]* | 0) die "BACKUP_MIRROR_KEEP_DAYS must be a whole number >= 1" ;; esac

health() {
    [ -s "$MIRROR_STATE" ] || { echo "no successful copy yet"; exit 1; }
    age=$(( $(date +%s) - $(cat "$MIRROR_STATE") ))
    if [ "$age" -ge $((2 * BACKUP_INTERVAL_SECS)) ]; then
        echo "the last successful copy is ${age}s old"
        exit 1
    fi
    echo "last successful copy ${age}s ago"
}

# rclone remotes from the environment, no config file: src (MinIO), dst (the backup store).
configure() {
    missing=""
    for v in S3_ENDPOINT S3_BUCKET S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY; do
        eval "val=\${$v:-}"
        # shellcheck disable=SC2154 # set by the eval above
        [ -n "$val" ] || missing="$missing $v"
    done
    [ -z "$missing" ] || die "not set:$missing"
    export RCLONE_CONFIG_SRC_TYPE=s3 RCLONE_CONFIG_SRC_PROVIDER=Minio \
        RCLONE_CONFIG_SRC_ENDPOINT="$S3_ENDPOINT" RCLONE_CONFIG_SRC_REGION="${S3_REGION:-us-east-1}" \
        RCLONE_CONFIG_SRC_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" \
        RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY"
    source_bucket="src:$S3_BUCKET"

    set_ones="" unset_ones=""
    for v in BACKUP_S3_ENDPOINT BACKUP_S3_ACCESS_KEY_ID BACKUP_S3_SECRET_ACCESS_KEY BACKUP_S3_BUCKET; do
        eval "val=\${$v:-}"
        if [ -n "$val" ]; then set_ones="$set_ones $v"; else unset_ones="$unset_ones $v"; fi
    done
    if [ -n "$set_ones" ] && [ -n "$unset_ones" ]; then
        die "BACKUP_S3_* are set only in part; not set:$unset_ones"
    fi
    if [ -n "$set_ones" ]; then
        export RCLONE_CONFIG_DST_TYPE=s3 RCLONE_CONFIG_DST_PROVIDER=Other \
            RCLONE_CONFIG_DST_ENDPOINT="$BACKUP_S3_ENDPOINT" \
            RCLONE_CONFIG_DST_REGION="${BACKUP_S3_REGION:-us-east-1}" \
            RCLONE_CONFIG_DST_ACCESS_KEY_ID="$BACKUP_S3_ACCESS_KEY_ID" \
            RCLONE_CONFIG_DST_SECRET_ACCESS_KEY="$BACKUP_S3_SECRET_ACCESS_KEY"
        dest="dst:$BACKUP_S3_BUCKET"
    else
        [ -n "${MIRROR_DIR:-}" ] || die "neither BACKUP_S3_* nor MIRROR_DIR is set"
        mkdir -p "$MIRROR_DIR"
        dest="$MIRROR_DIR"
    fi
}

once() {
    configure
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    say "copying $source_bucket and $BACKUP_DIR to $dest"
    rclone sync --checksum --fast-list --backup-dir "$dest/deleted/$stamp/blobs" \
        "$source_bucket" "$dest/blobs"
    rclone sync --checksum --exclude '.*' --backup-dir "$dest/deleted/$stamp/postgres" \
        "$BACKUP_DIR" "$dest/postgres"

    # Retention of what was removed or replaced: by the time in the directory's name.
    cutoff=$(date -u -d "@$(( $(date +%s) - BACKUP_MIRROR_KEEP_DAYS * 86400 ))" +%Y%m%d%H%M%S)
    for d in $(rclone lsf --dirs-only "$dest/deleted" 2>/dev/null || true); do
        d=${d%/}
        case "$d" in
            [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;;
            *) continue ;;
        esac
        digits=$(echo "$d" | tr -d 'TZ')
        if [ "$digits" -lt "$cutoff" ]; then
            say "retention: removing deleted/$d"
            rclone purge "$dest/deleted/$d"
        fi
    done
    date +%s >"$MIRROR_STATE"
    say "done: $(rclone size --json "$dest/blobs" 2>/dev/null || echo '?') in $dest/blobs"
}

restore() {
    configure
    say "copying $dest/blobs back into $source_bucket (nothing is deleted there)"
    rclone copy --checksum --fast-list "$dest/blobs" "$source_bucket"
    say "done"
}

loop() {
    sleeper=""
    # The sleep in the background goes too (without an init process it would outlive us).
    trap 'say stopping; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT
    say "every ${BACKUP_INTERVAL_SECS}s, keeping what was removed ${BACKUP_MIRROR_KEEP_DAYS} days"
    while :; do
        # A separate process: `set -e` holds inside it, and a failure does not end the loop.
        if sh "$0" once; then
            wait_secs=$BACKUP_INTERVAL_SECS
        else
            wait_secs=300
            [ "$BACKUP_INTERVAL_SECS" -ge 300 ] || wait_secs=$BACKUP_INTERVAL_SECS
            say "the copy failed; trying again in ${wait_secs}s"
        fi
        sleep "$wait_secs" &
        sleeper=$!
        wait "$sleeper"
    done
}

case "${1:-once}" in
    once) once ;;
    loop) loop ;;
    health) health ;;
    restore) restore ;;
    *) die "usage: mirror.sh [once|loop|health|restore]" ;;
esac
