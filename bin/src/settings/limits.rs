//! The bounds the public surfaces keep: the listeners (`ADMIN_BIND` apart from `HTTP_BIND`,
//! read and idle timeouts, connections) and the money (`MAX_GRANT`, `MAX_BALANCE`).

use std::time::Duration;

use aisha_http::HttpLimits;
use aisha_workflows::credits::{BALANCE_CEILING, CreditLimits};

use super::{Env, SettingsError, in_range};

pub const DEFAULT_ADMIN_BIND: &str = "127.0.0.1:9091";

/// `ADMIN_BIND`: the private listener (`/metrics`, `/admin/*`); never the public one.
pub(super) fn admin_bind(env: &Env<'_>, http_bind: &str) -> Result<String, SettingsError> {
    let bind = env
        .get("ADMIN_BIND")
        .unwrap_or(DEFAULT_ADMIN_BIND)
        .to_string();
    let Ok(addr) = bind.parse::<std::net::SocketAddr>() else {
        return Err(SettingsError {
            var: "ADMIN_BIND",
            expected: "host:port, e.g. 127.0.0.1:9091".into(),
            got: bind,
        });
    };
    let same_port = http_bind
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|h| h.port() == addr.port() && addr.port() != 0);
    if same_port {
        return Err(SettingsError {
            var: "ADMIN_BIND",
            expected: format!("a port other than HTTP_BIND's ({http_bind})"),
            got: bind,
        });
    }
    Ok(bind)
}

/// `HTTP_READ_TIMEOUT_SECS`, `HTTP_IDLE_TIMEOUT_SECS`, `HTTP_MAX_CONNECTIONS`: per listener.
pub(super) fn http_limits(env: &Env<'_>) -> Result<HttpLimits, SettingsError> {
    let d = HttpLimits::default();
    let secs = |var: &'static str, rule: &str, default: Duration, hi: u64| {
        env.parse(var, rule, default.as_secs())
            .and_then(|n| in_range(var, n, 1, hi))
            .map(Duration::from_secs)
    };
    Ok(HttpLimits {
        max_body: d.max_body,
        read_timeout: secs(
            "HTTP_READ_TIMEOUT_SECS",
            "a whole number of seconds from 1 to 300",
            d.read_timeout,
            300,
        )?,
        idle_timeout: secs(
            "HTTP_IDLE_TIMEOUT_SECS",
            "a whole number of seconds from 1 to 3600",
            d.idle_timeout,
            3600,
        )?,
        max_connections: env
            .parse(
                "HTTP_MAX_CONNECTIONS",
                "a number of connections from 16 to 100000",
                d.max_connections,
            )
            .and_then(|n| in_range("HTTP_MAX_CONNECTIONS", n, 16, 100_000))?,
    })
}

/// `MAX_GRANT` (one grant or purchase) and `MAX_BALANCE` (what a grant or purchase may bring a
/// balance to), both under the database's ceiling.
pub(super) fn credit_limits(env: &Env<'_>) -> Result<CreditLimits, SettingsError> {
    let d = CreditLimits::default();
    let grant_rule = format!("a whole number of credits from 1 to {BALANCE_CEILING}");
    let max_grant = env
        .parse("MAX_GRANT", &grant_rule, d.max_grant)
        .and_then(|n| in_range("MAX_GRANT", n, 1, BALANCE_CEILING))?;
    let balance_rule =
        format!("a whole number of credits from MAX_GRANT ({max_grant}) to {BALANCE_CEILING}");
    let max_balance = env
        .parse("MAX_BALANCE", &balance_rule, d.max_balance.max(max_grant))
        .and_then(|n| {
            if (max_grant..=BALANCE_CEILING).contains(&n) {
                Ok(n)
            } else {
                Err(SettingsError {
                    var: "MAX_BALANCE",
                    expected: balance_rule.clone(),
                    got: n.to_string(),
                })
            }
        })?;
    Ok(CreditLimits {
        max_grant,
        max_balance,
    })
}
