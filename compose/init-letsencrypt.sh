#!/usr/bin/env bash
# The TLS certificate of DOMAIN and S3_DOMAIN (one certificate, certbot --cert-name DOMAIN, in
# the certbot-etc volume that nginx reads).
#
#   init-letsencrypt.sh [--dev] placeholder      a self-signed certificate, only if there is
#                                                none yet, so that nginx can start
#   init-letsencrypt.sh [--dev] obtain [--force]  the real one from Let's Encrypt by the
#                                                webroot challenge (nginx must run and both
#                                                names must resolve to this host, port 80
#                                                open), in place of the placeholder; then
#                                                nginx reloads. --force: also when a real one
#                                                exists (e.g. S3_DOMAIN changed)
#   init-letsencrypt.sh [--dev] state            none | placeholder | real
#
# deploy.sh (and deploy.sh up) runs `placeholder` before nginx starts and `obtain` once it serves.
# Renewals are the certbot service's loop; nginx reloads every 12 h to pick them up.
# The scripts run by in_certbot are single-quoted: $DOMAIN expands inside the container.
# shellcheck disable=SC2016
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${1:-}" = "--dev" ]; then use_dev; shift; fi
require_env_file
domain=$(envval DOMAIN)
s3_domain=$(envval S3_DOMAIN)
if [ -z "$domain" ] || [ -z "$s3_domain" ]; then
    die "DOMAIN and S3_DOMAIN must be set in $env_file"
fi

# Runs a shell script in a throwaway certbot container (it has openssl) with the volumes.
in_certbot() {
    dc run --rm --no-deps -T -e DOMAIN="$domain" -e S3_DOMAIN="$s3_domain" \
        --entrypoint /bin/sh certbot -c "$1"
}

state() {
    in_certbot 'live="/etc/letsencrypt/live/$DOMAIN"
        if [ -f "$live/aisha-placeholder" ]; then echo placeholder
        elif [ -f "$live/fullchain.pem" ]; then echo real
        else echo none; fi' | tail -n 1 | tr -d '\r'
}

write_placeholder() {
    in_certbot 'set -e
        live="/etc/letsencrypt/live/$DOMAIN"
        mkdir -p "$live"
        openssl req -x509 -nodes -newkey rsa:2048 -days 30 -subj "/CN=$DOMAIN" \
            -addext "subjectAltName=DNS:$DOMAIN,DNS:$S3_DOMAIN" \
            -keyout "$live/privkey.pem" -out "$live/fullchain.pem" 2>/dev/null
        touch "$live/aisha-placeholder"'
}

cmd_placeholder() {
    local st
    st=$(state)
    if [ "$st" = none ]; then
        say "writing a self-signed placeholder certificate for $domain and $s3_domain"
        write_placeholder
    else
        say "certificate: $st"
    fi
}

cmd_obtain() {
    local force=0 st email staging
    [ "${1:-}" = "--force" ] && force=1
    st=$(state)
    if [ "$st" = real ] && [ "$force" = 0 ]; then
        say "a Let's Encrypt certificate is there already (--force to get a new one)"
        return
    fi
    email=$(envval LETSENCRYPT_EMAIL)
    staging=$(envval LETSENCRYPT_STAGING)
    [ -n "$email" ] || die "LETSENCRYPT_EMAIL is not set"
    running nginx || die "nginx must be running to answer the challenge on port 80"

    # certbot will not write into a live directory it did not create. nginx keeps serving
    # the placeholder it has loaded meanwhile.
    if [ "$st" = placeholder ]; then
        in_certbot 'rm -rf "/etc/letsencrypt/live/$DOMAIN" "/etc/letsencrypt/archive/$DOMAIN" \
            "/etc/letsencrypt/renewal/$DOMAIN.conf"'
    fi
    local args=(certonly --webroot -w /var/www/certbot --cert-name "$domain" -d "$domain"
        -d "$s3_domain" --email "$email" --agree-tos --no-eff-email --non-interactive)
    [ "$staging" = 1 ] && args+=(--staging)
    [ "$force" = 1 ] && args+=(--force-renewal)
    say "asking Let's Encrypt for $domain and $s3_domain${staging:+ (staging=$staging)}"
    if ! dc run --rm --no-deps -T --entrypoint certbot certbot "${args[@]}"; then
        [ "$st" = placeholder ] && write_placeholder
        die "certbot failed: do $domain and $s3_domain resolve to this host, and is port 80 reachable?"
    fi
    nginx_reload
    say "certificate obtained"
}

case "${1:-}" in
    placeholder) cmd_placeholder ;;
    obtain) shift; cmd_obtain "$@" ;;
    state) state ;;
    *) die "usage: init-letsencrypt.sh [--dev] placeholder|obtain [--force]|state" ;;
esac
