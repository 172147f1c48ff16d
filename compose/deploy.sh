#!/usr/bin/env bash
# The operator's one command for the compose deployment (README.md beside this file).
# `deploy.sh --help` prints the text between the usage markers below.
#
#usage-begin
# Usage: deploy.sh [--dev] [--skip-test] [--skip-build] [--force-rebuild] [--image IMAGE]
#        deploy.sh [--dev] COMMAND [ARGS...]
#
# Without a COMMAND: the full deploy of this checkout. Every step is waited for; the first
# that fails stops it with a message naming the step and a non-zero exit status.
#   1. image: aisha:<commit> (git rev-parse --short HEAD) is reused when it exists, else built
#      from the repository's Dockerfile with --build-arg AISHA_COMMIT=<commit> (a checkout
#      with uncommitted changes is <commit>-dirty and is always built)
#   2. tests: scripts/test, run from the repository root
#   3. with REGISTRY: the image tagged REGISTRY/aisha:<commit> and pushed
#   4. with DEPLOY_HOST: compose/ and grafana/ copied to DEPLOY_DIR there (rsync over ssh;
#      the host's compose/.env is kept), then steps 5-8 run there by this script over ssh
#      (`deploy.sh --image REGISTRY/aisha:<commit>`: docker pull, then the same steps)
#   5. the image tagged AISHA_IMAGE (.env, aisha:latest), which the containers run; the
#      Docker network AISHA_NETWORK (.env, aisha-backend) created if it is missing
#   6. postgres, redis, minio up and healthy, the bucket (minio-init)
#   7. migrations: the one-shot `migrate` service
#   8. the roles one at a time, each waited for until healthy (GET /ready): webhook-api-1,
#      then webhook-api-2 (nginx reloaded after each, so one replica always serves), the bot,
#      nginx (+ its certificate), the workers, then monitoring, backups and the mirror
#
# Options (for the full deploy):
#   --skip-test        do not run scripts/test
#   --skip-build       do not build: aisha:<commit> if it exists, else whatever AISHA_IMAGE
#                      is now (with REGISTRY, aisha:<commit> must exist)
#   --force-rebuild    build even when aisha:<commit> exists, with --no-cache
#   --image IMAGE      deploy IMAGE instead of building and testing (pulled first when the
#                      name has a registry part). What step 4 runs on DEPLOY_HOST; also a
#                      rollback: --image aisha:<older commit>
#   --dev              dev.env: simulated FAL and Telegram, no Let's Encrypt
#   -h, --help         this text
#
# Commands:
#   up                 steps 5-8 with the image AISHA_IMAGE names now (no build, no tests)
#   pull               pull the third-party images
#   migrate            apply the migrations
#   restart            rolling restart of the aisha roles
#   status             containers, health, /health and /ready of every role, image, certificate
#   backup             a database dump and a copy to the backup destination, now
#   restore FILE [--yes]
#                      replace the database with a dump: a file on this host or the name of
#                      one in the backups volume (a dump of the current database is made first)
#   logs [SERVICE...]  follow the logs
#   admin ARGS...      `aisha admin ARGS...` in a worker container
#   check              only check the env file
#
# Environment (this shell's, not the env file's):
#   REGISTRY=host:5000         push the image to this registry as REGISTRY/aisha:<commit>
#                              (`docker login` first if it needs one)
#   DEPLOY_HOST=user@host      deploy that host over ssh instead of this one (needs REGISTRY,
#                              or --image with a registry; the host needs bash, rsync, Docker
#                              with Compose, its own compose/.env, and pulls from REGISTRY)
#   DEPLOY_DIR=aisha           where compose/ and grafana/ go on DEPLOY_HOST, relative to the
#                              ssh user's home directory or absolute
#   DEPLOY_HEALTH_TIMEOUT=180  seconds to wait for a service to become healthy
#   AISHA_ENV_FILE=.env        the env file, relative to compose/ (--dev: dev.env)
#usage-end
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo_root=$(cd "$compose_dir/.." && pwd)

usage() {
    sed -n '/^#usage-begin$/,/^#usage-end$/p' "$compose_dir/deploy.sh" | sed '1d;$d;s/^# \{0,1\}//'
}

dev=0 skip_test=0 skip_build=0 force_rebuild=0 image="" options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dev) dev=1; use_dev ;;
        --skip-test) skip_test=1; options+=("$1") ;;
        --skip-build) skip_build=1; options+=("$1") ;;
        --force-rebuild) force_rebuild=1; options+=("$1") ;;
        --image)
            if [ $# -lt 2 ] || [ -z "$2" ]; then die "--image needs an image name"; fi
            image=$2; options+=("$1"); shift ;;
        -h | --help) usage; exit 0 ;;
        -*) say "unknown option: $1 (deploy.sh --help)" >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done

# The step under way, named when something fails that did not say why itself.
current_step=""
step() { current_step=$*; say "== $*"; }
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$died" = 0 ] && [ -n "$current_step" ]; then
        say "error: failed: $current_step (exit status $rc)" >&2
    fi
}
trap on_exit EXIT

aisha_roles=(bot worker webhook-api-1 webhook-api-2)

# --- checks -----------------------------------------------------------------------------

env_checked=0
check_env() {
    [ "$env_checked" = 0 ] || return 0
    require_env_file
    local problems=() missing=() placeholders=() name v
    local required=(DOMAIN S3_DOMAIN LETSENCRYPT_EMAIL POSTGRES_PASSWORD MINIO_ROOT_USER
        MINIO_ROOT_PASSWORD S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY FAL_KEY WEBHOOK_SECRET
        ADMIN_TOKEN TELEGRAM_BOT_TOKEN GRAFANA_ADMIN_PASSWORD)
    for name in "${required[@]}"; do
        v=$(envval "$name")
        if [ -z "$v" ]; then
            missing+=("$name")
        elif [[ "$v" == *change-me* ]]; then
            placeholders+=("$name")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] || problems+=("not set: ${missing[*]}")
    [ "${#placeholders[@]}" -eq 0 ] || problems+=("still a change-me placeholder: ${placeholders[*]}")

    v=$(envval WEBHOOK_SECRET)
    [ -z "$v" ] || [ "${#v}" -ge 32 ] || problems+=("WEBHOOK_SECRET must have at least 32 characters")
    v=$(envval ADMIN_TOKEN)
    [ -z "$v" ] || [ "${#v}" -ge 16 ] || problems+=("ADMIN_TOKEN must have at least 16 characters")
    v=$(envval POSTGRES_PASSWORD)
    [[ -z "$v" || "$v" =~ ^[A-Za-z0-9._~-]+$ ]] \
        || problems+=("POSTGRES_PASSWORD goes into DATABASE_URL: letters, digits and . _ ~ - only")
    v=$(envval MINIO_ROOT_PASSWORD)
    [ -z "$v" ] || [ "${#v}" -ge 8 ] || problems+=("MINIO_ROOT_PASSWORD must have at least 8 characters")
    v=$(envval S3_SECRET_ACCESS_KEY)
    [ -z "$v" ] || [ "${#v}" -ge 8 ] || problems+=("S3_SECRET_ACCESS_KEY must have at least 8 characters")
    [ "$(envval S3_ACCESS_KEY_ID)" != "$(envval MINIO_ROOT_USER)" ] \
        || problems+=("S3_ACCESS_KEY_ID must differ from MINIO_ROOT_USER (aisha gets its own key)")
    [ "$(envval DOMAIN)" != "$(envval S3_DOMAIN)" ] || problems+=("S3_DOMAIN must differ from DOMAIN")
    v=$(envval TELEGRAM_BOT_TOKEN)
    [[ -z "$v" || "$v" == *change-me* || "$v" =~ ^[0-9]+:.{8,}$ ]] \
        || problems+=("TELEGRAM_BOT_TOKEN does not look like a token from @BotFather (123456:ABC…)")
    v=$(envval TELEGRAM_MODE)
    case "${v:-polling}" in
        polling) ;;
        webhook)
            [[ "$(envval TELEGRAM_WEBHOOK_SECRET)" =~ ^[A-Za-z0-9_-]{1,256}$ ]] \
                || problems+=("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET (1-256 of A-Z a-z 0-9 _ -)")
            ;;
        *) problems+=("TELEGRAM_MODE must be polling or webhook, not $v") ;;
    esac
    v=$(envval SHUTDOWN_GRACE_SECS)
    [[ -z "$v" || ("$v" =~ ^[0-9]+$ && "$v" -le 40) ]] \
        || problems+=("SHUTDOWN_GRACE_SECS must be at most 40 (containers are stopped after 45 s)")
    v=$(envval WORKER_REPLICAS)
    [[ -z "$v" || "$v" =~ ^[1-9][0-9]*$ ]] || problems+=("WORKER_REPLICAS must be a whole number >= 1")
    v=$(envval AISHA_NETWORK)
    [[ -z "$v" || "$v" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || problems+=("AISHA_NETWORK is not a Docker network name: $v")

    # The backup destination of the mirror: a remote S3 bucket (all four) or a directory.
    local s3_set=() s3_unset=()
    for name in BACKUP_S3_ENDPOINT BACKUP_S3_ACCESS_KEY_ID BACKUP_S3_SECRET_ACCESS_KEY BACKUP_S3_BUCKET; do
        if [ -n "$(envval "$name")" ]; then s3_set+=("$name"); else s3_unset+=("$name"); fi
    done
    if [ "${#s3_set[@]}" -gt 0 ] && [ "${#s3_unset[@]}" -gt 0 ]; then
        problems+=("BACKUP_S3_* are set only in part; not set: ${s3_unset[*]}")
    fi
    v=$(envval BACKUP_MIRROR_KEEP_DAYS)
    [[ -z "$v" || "$v" =~ ^[1-9][0-9]*$ ]] || problems+=("BACKUP_MIRROR_KEEP_DAYS must be a whole number >= 1")

    if [ "${#problems[@]}" -gt 0 ]; then
        for v in "${problems[@]}"; do say "$env_file: $v" >&2; done
        die "fix $compose_dir/$env_file first"
    fi
    if [ "${#s3_set[@]}" -eq 0 ] && [ -z "$(envval BACKUP_MIRROR_DIR)" ]; then
        say "warning: the mirror of blobs and dumps goes to the volume blob-mirror on this host;" \
            "set BACKUP_S3_* or BACKUP_MIRROR_DIR (another disk, a network mount) for a copy elsewhere" >&2
    fi
    say "$env_file: ok"
    env_checked=1
}

replicas() { local n; n=$(envval WORKER_REPLICAS); printf '%s' "${n:-2}"; }
health_timeout() { printf '%s' "${DEPLOY_HEALTH_TIMEOUT:-180}"; }

# Waits until every container of the service is healthy (or running, without a healthcheck).
wait_healthy() {
    local svc=$1 limit deadline ids id st ok
    limit=$(health_timeout)
    deadline=$((SECONDS + limit))
    while :; do
        mapfile -t ids < <(dc ps -q "$svc")
        ok=1
        [ "${#ids[@]}" -gt 0 ] || ok=0
        for id in "${ids[@]}"; do
            st=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
            case "$st" in healthy | running) ;; *) ok=0 ;; esac
        done
        if [ "$ok" = 1 ]; then
            say "$svc: healthy"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            dc ps "$svc" >&2 || true
            dc logs --tail 40 "$svc" >&2 || true
            die "$svc is not healthy after ${limit}s (its last logs above); stopped here${current_step:+, at: $current_step}"
        fi
        sleep 2
    done
}

# The Docker network of every service: external in docker-compose.yml, so it outlives
# `docker compose down` and is created here.
ensure_network() {
    local net
    net=$(envval AISHA_NETWORK)
    net=${net:-aisha-backend}
    if ! docker network inspect "$net" >/dev/null 2>&1; then
        say "creating the Docker network $net"
        docker network create "$net" >/dev/null || die "cannot create the Docker network $net"
    fi
}

# --- images -----------------------------------------------------------------------------

aisha_image() { local i; i=$(envval AISHA_IMAGE); printf '%s' "${i:-aisha:latest}"; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }

# aisha:<short commit>, -dirty with uncommitted changes.
commit_tag() {
    local c
    c=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null) \
        || die "$repo_root is not a git checkout: deploy an image with --image IMAGE"
    [ -z "$(git -C "$repo_root" status --porcelain 2>/dev/null)" ] || c="$c-dirty"
    printf '%s' "$c"
}

build_image() { # name commit
    local args=(build)
    [ "$force_rebuild" = 1 ] && args+=(--no-cache)
    args+=(--build-arg "AISHA_COMMIT=$2" -t "$1" -f "$repo_root/Dockerfile" "$repo_root")
    docker "${args[@]}" || die "docker build of $1 failed (output above)"
}

# Sets deploy_image and deploy_commit: the image of this checkout, built when needed.
prepare_image() {
    deploy_commit=$(commit_tag)
    deploy_image="aisha:$deploy_commit"
    step "image $deploy_image"
    if [ "$skip_build" = 1 ]; then
        if has_image "$deploy_image"; then
            say "--skip-build: using $deploy_image"
        else
            [ -z "${REGISTRY:-}" ] || die "--skip-build: $deploy_image does not exist, and REGISTRY needs the image of this commit"
            has_image "$(aisha_image)" \
                || die "--skip-build: neither $deploy_image nor $(aisha_image) exists; deploy without --skip-build"
            say "--skip-build: $deploy_image does not exist; keeping $(aisha_image) as it is"
            deploy_image=$(aisha_image)
        fi
    elif [ "$force_rebuild" = 1 ]; then
        say "building $deploy_image (--force-rebuild: --no-cache)"
        build_image "$deploy_image" "$deploy_commit"
    elif [[ "$deploy_commit" == *-dirty ]]; then
        say "uncommitted changes: building $deploy_image"
        build_image "$deploy_image" "$deploy_commit"
    elif has_image "$deploy_image"; then
        say "reusing $deploy_image (built before from this commit)"
    else
        say "building $deploy_image"
        build_image "$deploy_image" "$deploy_commit"
    fi
}

run_tests() {
    step "tests: scripts/test"
    (cd "$repo_root" && scripts/test) || die "the tests failed (scripts/test, output above): nothing was deployed"
}

push_image() { # sets pushed_image
    pushed_image="$REGISTRY/aisha:$deploy_commit"
    step "push $pushed_image"
    docker tag "$deploy_image" "$pushed_image" || die "docker tag $deploy_image $pushed_image failed"
    docker push "$pushed_image" \
        || die "docker push $pushed_image failed: is $REGISTRY reachable (docker login $REGISTRY)?"
}

# An image with a registry or organisation part in its name (host[:port]/…, org/…) is pulled.
pullable() { [[ "$1" == */* ]]; }

pull_image() {
    step "pull $1"
    docker pull "$1" \
        || die "docker pull $1 failed: is the registry reachable from here? (a plain-http registry must be in the Docker daemon's insecure-registries)"
}

# --- roll-out ---------------------------------------------------------------------------

cmd_migrate() {
    dc up -d postgres redis
    wait_healthy postgres
    wait_healthy redis
    step "migrations (migrate)"
    dc run --rm --no-deps migrate || die "the migrations failed (output above)"
}

# One webhook replica at a time: nginx sends callbacks to the other meanwhile (and retries
# a failed one there), then learns the new container's address.
roll_webhooks() {
    local recreate=("$@") svc
    for svc in webhook-api-1 webhook-api-2; do
        step "$svc"
        dc up -d --no-deps "${recreate[@]}" "$svc"
        wait_healthy "$svc"
        nginx_reload
    done
}

cmd_up() {
    check_env
    has_image "$(aisha_image)" || die "there is no image $(aisha_image): ./deploy.sh builds one (or --image IMAGE)"
    ensure_network
    local n
    n=$(replicas)

    step "postgres, redis, minio"
    dc up -d postgres redis minio
    wait_healthy postgres
    wait_healthy redis
    wait_healthy minio
    step "bucket and key (minio-init)"
    dc run --rm --no-deps minio-init || die "minio-init failed (output above)"
    cmd_migrate
    if [ "$dev" = 1 ]; then
        step "simulators (dev)"
        dc up -d --no-deps sim-fal sim-telegram
        wait_healthy sim-fal
        wait_healthy sim-telegram
    fi

    roll_webhooks
    step "bot"
    dc up -d --no-deps bot
    wait_healthy bot

    step "nginx"
    ./init-letsencrypt.sh placeholder
    dc up -d --no-deps nginx certbot
    wait_healthy nginx
    nginx_reload
    if [ "$dev" = 0 ] && [ "$(./init-letsencrypt.sh state)" != real ]; then
        step "certificate (Let's Encrypt)"
        ./init-letsencrypt.sh obtain
    fi

    # After nginx: the workers reach S3 through it (https://S3_DOMAIN).
    step "$n worker(s)"
    dc up -d --no-deps --scale worker="$n" worker
    wait_healthy worker

    step "monitoring, backups, mirror and the rest"
    dc up -d --scale worker="$n"
    wait_healthy prometheus
    wait_healthy grafana
    nginx_reload
    current_step=""
    cmd_status
}

# Steps 5-8: AISHA_IMAGE becomes the image, then everything is brought up in order.
roll_out() {
    local target
    target=$(aisha_image)
    if [ "$1" != "$target" ]; then
        docker tag "$1" "$target" || die "docker tag $1 $target failed"
        say "$target is now $1"
    fi
    cmd_up
    say "deployed $1"
}

remote_deploy() { # image
    local dir="${DEPLOY_DIR:-aisha}" run
    [[ "$dir" =~ ^[A-Za-z0-9._/-]+$ ]] || die "DEPLOY_DIR may hold letters, digits and . _ / - only: $dir"
    run="cd $dir/compose && ./deploy.sh"
    [ "$dev" = 0 ] || run+=" --dev"
    run+=" --image $1"
    step "copy compose/ and grafana/ to $DEPLOY_HOST:$dir"
    # shellcheck disable=SC2029 # expanded here on purpose: the host runs these words
    ssh "$DEPLOY_HOST" "mkdir -p $dir/compose $dir/grafana" || die "ssh $DEPLOY_HOST failed"
    # --delete: files removed here go there too; the host's .env is never touched.
    rsync -az --delete --exclude=/.env "$compose_dir/" "$DEPLOY_HOST:$dir/compose/" \
        || die "rsync of compose/ to $DEPLOY_HOST failed"
    rsync -az --delete "$repo_root/grafana/" "$DEPLOY_HOST:$dir/grafana/" \
        || die "rsync of grafana/ to $DEPLOY_HOST failed"
    step "deploy on $DEPLOY_HOST"
    # shellcheck disable=SC2029 # expanded here on purpose: the host runs these words
    ssh "$DEPLOY_HOST" "$run" \
        || die "the deploy on $DEPLOY_HOST failed (its messages above)"
    say "deployed $1 on $DEPLOY_HOST"
}

cmd_deploy() {
    [ "$skip_build" = 0 ] || [ "$force_rebuild" = 0 ] || die "--skip-build and --force-rebuild exclude each other"
    if [ -n "$image" ]; then
        [ "$skip_build$force_rebuild" = 00 ] || die "--image deploys that image: --skip-build and --force-rebuild do not apply"
        [[ "$image" =~ ^[A-Za-z0-9._/:@-]+$ ]] || die "not an image name: $image"
    fi
    if [ -n "${REGISTRY:-}" ]; then
        [[ "$REGISTRY" =~ ^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$ ]] \
            || die "REGISTRY must be host[:port][/path], without a scheme: $REGISTRY"
    fi
    if [ -n "${DEPLOY_HOST:-}" ]; then
        [[ "$DEPLOY_HOST" =~ ^[A-Za-z0-9._@-]+$ ]] || die "DEPLOY_HOST must be user@host or host: $DEPLOY_HOST"
        if [ -n "$image" ]; then
            pullable "$image" || die "DEPLOY_HOST pulls the image: --image needs a registry in its name"
        else
            [ -n "${REGISTRY:-}" ] || die "DEPLOY_HOST needs REGISTRY: $DEPLOY_HOST pulls the image from it"
        fi
    else
        # This host: its env file, before anything slow.
        check_env
    fi

    if [ -n "$image" ]; then
        if [ -n "${DEPLOY_HOST:-}" ]; then
            remote_deploy "$image"
            return
        fi
        if pullable "$image"; then pull_image "$image"; fi
        has_image "$image" || die "there is no image $image"
        roll_out "$image"
        return
    fi

    prepare_image
    if [ "$skip_test" = 1 ]; then say "--skip-test: no tests"; else run_tests; fi
    if [ -n "${REGISTRY:-}" ]; then push_image; fi
    if [ -n "${DEPLOY_HOST:-}" ]; then
        remote_deploy "$pushed_image"
    else
        roll_out "$deploy_image"
    fi
}

cmd_restart() {
    check_env
    ensure_network
    roll_webhooks --force-recreate
    step "bot"
    dc up -d --no-deps --force-recreate bot
    wait_healthy bot
    step "workers"
    dc up -d --no-deps --force-recreate --scale worker="$(replicas)" worker
    wait_healthy worker
    nginx_reload
}

cmd_pull() {
    check_env
    step "pull the third-party images"
    dc pull postgres redis minio minio-init nginx certbot prometheus grafana backup mirror
}

# --- operations -------------------------------------------------------------------------

cmd_status() {
    dc ps
    local svc id h r rev
    rev=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$(aisha_image)" 2>/dev/null || true)
    say "image: $(aisha_image) (commit ${rev:-unknown})"
    for svc in "${aisha_roles[@]}"; do
        while read -r id; do
            [ -n "$id" ] || continue
            h=$(docker exec "$id" curl -s -m 3 http://127.0.0.1:8080/health 2>/dev/null || true)
            r=$(docker exec "$id" curl -s -m 3 http://127.0.0.1:8080/ready 2>/dev/null || true)
            say "$svc ${id:0:12} /health: ${h:-no answer} /ready: ${r:-no answer}"
        done < <(dc ps -q "$svc")
    done
    say "certificate: $(./init-letsencrypt.sh state)"
}

cmd_backup() {
    ensure_network
    dc up -d postgres minio
    wait_healthy postgres
    step "database dump"
    dc run --rm --no-deps -T --entrypoint bash backup /backup/backup.sh once
    dc run --rm --no-deps -T --entrypoint ls backup -lh /backups
    wait_healthy minio
    step "copy to the backup destination (mirror)"
    dc run --rm --no-deps -T --entrypoint /bin/sh mirror /backup/mirror.sh once
}

cmd_restore() {
    local file="${1:-}" yes="${2:-}" path mount=() answer
    [ -n "$file" ] || die "usage: deploy.sh restore FILE [--yes]"
    check_env
    ensure_network
    if [ -f "$file" ]; then
        path="/restore/$(basename "$file")"
        mount=(-v "$(cd "$(dirname "$file")" && pwd)/$(basename "$file"):$path:ro")
    else
        path="/backups/$file"
        dc run --rm --no-deps -T --entrypoint test backup -f "$path" \
            || die "$file is neither a file here nor a dump in the backups volume (./deploy.sh backup lists them)"
    fi
    if [ "$yes" != "--yes" ]; then
        [ -t 0 ] || die "restore replaces the live database: pass --yes when not on a terminal"
        read -r -p "[deploy] this replaces database aisha with $file; type 'aisha' to go on: " answer
        [ "$answer" = aisha ] || die "cancelled"
    fi
    dc up -d postgres redis
    wait_healthy postgres
    step "a dump of the current database first"
    dc run --rm --no-deps -T --entrypoint bash backup /backup/backup.sh once
    step "stopping the aisha roles"
    dc stop "${aisha_roles[@]}"
    step "restore $file"
    dc run --rm --no-deps -T "${mount[@]}" --entrypoint bash backup \
        /backup/restore.sh --replace "$path" aisha
    # The dump may be older than the code.
    step "migrations (migrate)"
    dc run --rm --no-deps migrate || die "the migrations failed (output above)"
    roll_webhooks
    step "bot and workers"
    dc up -d --no-deps --scale worker="$(replicas)" bot worker
    wait_healthy bot
    wait_healthy worker
    nginx_reload
}

cmd_admin() {
    local tty=()
    [ -t 0 ] && [ -t 1 ] || tty=(-T)
    dc exec "${tty[@]}" worker aisha admin "$@"
}

if [ $# -gt 0 ] && [ "${#options[@]}" -gt 0 ]; then
    die "${options[*]} belong to the full deploy (deploy.sh without a command), not to '$1'"
fi
case "${1:-}" in
    "") cmd_deploy ;;
    up) cmd_up ;;
    pull) cmd_pull ;;
    migrate) check_env; ensure_network; cmd_migrate ;;
    restart) cmd_restart ;;
    status) require_env_file; cmd_status ;;
    backup) require_env_file; cmd_backup ;;
    restore) shift; cmd_restore "$@" ;;
    logs) shift; require_env_file; dc logs -f --tail 200 "$@" ;;
    admin) shift; require_env_file; cmd_admin "$@" ;;
    check) check_env ;;
    *) say "unknown command: $1 (deploy.sh --help)" >&2; exit 2 ;;
esac
