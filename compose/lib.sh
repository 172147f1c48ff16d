# shellcheck shell=bash
# Shared by deploy.sh and init-letsencrypt.sh (sourced, never run): the compose command, the
# env file and its values, messages.

compose_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$compose_dir" || exit 1

say() { printf '[deploy] %s\n' "$*"; }
# `died` tells deploy.sh's exit trap that the reason was said already.
# shellcheck disable=SC2034 # read by deploy.sh
died=0
# shellcheck disable=SC2034
die() { say "error: $*" >&2; died=1; exit 1; }

# The env file: .env (production), dev.env with --dev, or AISHA_ENV_FILE.
env_file="${AISHA_ENV_FILE:-.env}"

use_dev() {
    env_file="${AISHA_ENV_FILE:-dev.env}"
    export AISHA_ENV_FILE="$env_file"
}

require_env_file() {
    [ -f "$env_file" ] || die "$compose_dir/$env_file is missing: cp .env.example .env, then fill it in"
}

# A value as compose sees it: the shell's environment first, else the last NAME= line of the
# env file (one pair of surrounding quotes removed).
envval() {
    local name=$1 line val=""
    if [ -n "${!name+set}" ]; then
        printf '%s' "${!name}"
        return
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in "$name="*) val=${line#"$name="} ;; esac
    done <"$env_file"
    val=${val%$'\r'}
    case "$val" in
        \"*\" | \'*\') [ "${#val}" -ge 2 ] && val=${val:1:${#val}-2} ;;
    esac
    printf '%s' "$val"
}

# docker compose v2, else docker-compose >= 1.29 (service_completed_successfully).
compose_cmd=()
find_compose() {
    [ "${#compose_cmd[@]}" -gt 0 ] && return
    if docker compose version >/dev/null 2>&1; then
        compose_cmd=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose_cmd=(docker-compose)
    else
        die "neither 'docker compose' nor 'docker-compose' is installed"
    fi
}

dc() {
    find_compose
    "${compose_cmd[@]}" --env-file "$env_file" "$@"
}

# Is at least one container of the service running? (docker-compose 1.29 lists stopped
# containers too.)
running() {
    local id
    for id in $(dc ps -q "$1" 2>/dev/null); do
        [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] && return 0
    done
    return 1
}

nginx_reload() {
    if running nginx; then
        dc exec -T nginx nginx -s reload >/dev/null && say "nginx reloaded"
    fi
}
