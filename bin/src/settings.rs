//! All configuration, read once from the environment into one typed struct. A bad value
//! stops start-up with the variable's name and what was expected.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use aisha_engine::{EngineConfig, QueueKind};
use aisha_http::HttpLimits;
use aisha_workflows::credits::CreditLimits;

pub mod fal;
mod limits;
pub mod product;
pub mod telegram;

pub use fal::FalSettings;
pub use product::ProductSettings;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: expected {expected}, got `{got}`")]
pub struct SettingsError {
    pub var: &'static str,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub db_max_connections: u32,
    pub queue_backend: QueueKind,
    pub redis_url: Option<String>,
    /// The public listener: webhooks, `/health`, `/ready`, local blob URLs.
    pub http_bind: String,
    /// The private listener: `/metrics`, `/admin/*`.
    pub admin_bind: String,
    pub http_limits: HttpLimits,
    pub credit_limits: CreditLimits,
    pub log_format: LogFormat,
    pub admin_token: Option<String>,
    pub engine: EngineConfig,
    pub fal: FalSettings,
    pub product: ProductSettings,
    /// Set when `TELEGRAM_BOT_TOKEN` is.
    pub telegram: Option<aisha_telegram::TelegramConfig>,
}

/// Printable: the database URL without its password, the admin token hidden.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &aisha_engine::db::redact_url(&self.database_url),
            )
            .field("queue_backend", &self.queue_backend)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(aisha_engine::db::redact_url),
            )
            .field("http_bind", &self.http_bind)
            .field("admin_bind", &self.admin_bind)
            .field("http_limits", &self.http_limits)
            .field("credit_limits", &self.credit_limits)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("fal", &self.fal)
            .field("product", &self.product)
            .field("telegram", &self.telegram)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The smallest admin token accepted.
    pub const MIN_ADMIN_TOKEN: usize = 16;
}

pub(crate) struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, var: &'static str) -> Option<&str> {
        self.0.get(var).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn parse<T: FromStr>(
        &self,
        var: &'static str,
        expected: &str,
        default: T,
    ) -> Result<T, SettingsError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| SettingsError {
                var,
                expected: expected.into(),
                got: v.into(),
            }),
        }
    }

    fn secs(&self, var: &'static str, default: u64) -> Result<Duration, SettingsError> {
        Ok(Duration::from_secs(self.parse(
            var,
            "a whole number of seconds",
            default,
        )?))
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let env = Env(vars);
        let data_dir = PathBuf::from(env.get("DATA_DIR").unwrap_or("./data"));
        let database_url = match env.get("DATABASE_URL") {
            Some(u)
                if u.starts_with("postgres://")
                    || u.starts_with("postgresql://")
                    || u.starts_with("sqlite:") =>
            {
                u.to_string()
            }
            Some(u) => {
                return Err(SettingsError {
                    var: "DATABASE_URL",
                    expected: "a postgres:// or sqlite: URL".into(),
                    got: aisha_engine::db::redact_url(u),
                });
            }
            None => format!("sqlite:{}", data_dir.join("aisha.db").display()),
        };
        let on_postgres = !database_url.starts_with("sqlite:");
        let default_queue = if on_postgres {
            QueueKind::Postgres
        } else {
            QueueKind::Sqlite
        };
        let queue_backend = match env.get("QUEUE_BACKEND") {
            None => default_queue,
            Some(v) => v.parse().map_err(|expected| SettingsError {
                var: "QUEUE_BACKEND",
                expected,
                got: v.into(),
            })?,
        };
        let redis_url = env.get("REDIS_URL").map(str::to_string);
        if let Some(u) = &redis_url
            && !(u.starts_with("redis://") || u.starts_with("rediss://"))
        {
            return Err(SettingsError {
                var: "REDIS_URL",
                expected: "a redis:// or rediss:// URL".into(),
                got: aisha_engine::db::redact_url(u),
            });
        }
        match queue_backend {
            QueueKind::Redis if redis_url.is_none() => {
                return Err(SettingsError {
                    var: "REDIS_URL",
                    expected: "a redis:// URL because QUEUE_BACKEND=redis".into(),
                    got: String::new(),
                });
            }
            QueueKind::Postgres if !on_postgres => {
                return Err(SettingsError {
                    var: "QUEUE_BACKEND",
                    expected: "sqlite or redis with a sqlite: DATABASE_URL (the postgres queue lives in the database)".into(),
                    got: "postgres".into(),
                });
            }
            QueueKind::Sqlite if on_postgres => {
                return Err(SettingsError {
                    var: "QUEUE_BACKEND",
                    expected: "postgres or redis with a postgres:// DATABASE_URL".into(),
                    got: "sqlite".into(),
                });
            }
            _ => {}
        }
        let http_bind = env.get("HTTP_BIND").unwrap_or("127.0.0.1:8080").to_string();
        if http_bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingsError {
                var: "HTTP_BIND",
                expected: "host:port, e.g. 127.0.0.1:8080".into(),
                got: http_bind,
            });
        }
        let log_format = match env.get("LOG_FORMAT").unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(SettingsError {
                    var: "LOG_FORMAT",
                    expected: "text or json".into(),
                    got: other.into(),
                });
            }
        };
        let admin_token = env.get("ADMIN_TOKEN").map(str::to_string);
        if let Some(t) = &admin_token
            && t.len() < Settings::MIN_ADMIN_TOKEN
        {
            return Err(SettingsError {
                var: "ADMIN_TOKEN",
                expected: format!("at least {} characters", Settings::MIN_ADMIN_TOKEN),
                got: format!("{} characters", t.len()),
            });
        }
        let defaults = EngineConfig::default();
        let engine = EngineConfig {
            namespace: env.get("QUEUE_NAMESPACE").unwrap_or("aisha").to_string(),
            concurrency: env
                .parse(
                    "WORKER_CONCURRENCY",
                    "a number of steps from 1 to 1024",
                    32usize,
                )
                .and_then(|n| in_range("WORKER_CONCURRENCY", n, 1, 1024))?,
            lease_grace: env.secs("LEASE_GRACE_SECS", defaults.lease_grace.as_secs())?,
            reconcile_every: env
                .secs("RECONCILE_EVERY_SECS", defaults.reconcile_every.as_secs())?,
            stale_after: env.secs("RECONCILE_STALE_SECS", defaults.stale_after.as_secs())?,
            retention: env.secs("QUEUE_RETENTION_SECS", defaults.retention.as_secs())?,
            shutdown_grace: env.secs("SHUTDOWN_GRACE_SECS", defaults.shutdown_grace.as_secs())?,
            provider_capacity: provider_capacity(env.get("PROVIDER_CAPACITY"))?,
            ..defaults
        };
        let admin_bind = limits::admin_bind(&env, &http_bind)?;
        let credit_limits = limits::credit_limits(&env)?;
        let mut telegram = telegram::from_env(&env)?;
        if let Some(t) = &mut telegram {
            telegram::bound_credits(t, credit_limits)?;
        }
        Ok(Settings {
            db_max_connections: db_max_connections(&env, &database_url)?,
            data_dir,
            database_url,
            queue_backend,
            redis_url,
            http_bind,
            admin_bind,
            http_limits: limits::http_limits(&env)?,
            credit_limits,
            log_format,
            admin_token,
            engine,
            fal: FalSettings::from_env(&env)?,
            product: ProductSettings::from_env(&env)?,
            telegram,
        })
    }
}

/// `DB_MAX_CONNECTIONS`: every connection the process opens, across its pools (see
/// `aisha_engine::Budget` for the split).
fn db_max_connections(env: &Env<'_>, database_url: &str) -> Result<u32, SettingsError> {
    let lo = if database_url.starts_with("sqlite:") {
        1
    } else {
        aisha_engine::Budget::MIN_POSTGRES
    };
    let rule = format!("a number of connections from {lo} to 500 (all pools of the process)");
    let n: u32 = env.parse("DB_MAX_CONNECTIONS", &rule, 20u32)?;
    in_range("DB_MAX_CONNECTIONS", n, lo, 500)
}

pub(crate) fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    var: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, SettingsError> {
    if v < lo || v > hi {
        return Err(SettingsError {
            var,
            expected: format!("a number from {lo} to {hi}"),
            got: v.to_string(),
        });
    }
    Ok(v)
}

/// `fal=4,other=2`: most in-flight external calls per provider.
fn provider_capacity(v: Option<&str>) -> Result<HashMap<String, i64>, SettingsError> {
    let mut out = HashMap::new();
    let Some(v) = v else { return Ok(out) };
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = part
            .split_once('=')
            .and_then(|(k, n)| Some((k.trim().to_string(), n.trim().parse::<i64>().ok()?)))
            .filter(|(k, n)| !k.is_empty() && *n > 0);
        match parsed {
            Some((k, n)) => {
                out.insert(k, n);
            }
            None => {
                return Err(SettingsError {
                    var: "PROVIDER_CAPACITY",
                    expected: "provider=N pairs separated by commas, e.g. fal=4".into(),
                    got: v.into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_configuration_is_embedded_sqlite() {
        let s = Settings::from_map(&HashMap::new()).unwrap();
        assert_eq!(s.database_url, "sqlite:./data/aisha.db");
        assert_eq!(s.queue_backend, QueueKind::Sqlite);
        assert_eq!(s.http_bind, "127.0.0.1:8080");
        assert_eq!(s.admin_bind, "127.0.0.1:9091");
        assert_eq!(s.credit_limits.max_grant, 1_000_000);
        assert_eq!(s.http_limits, HttpLimits::default());
        assert_eq!(s.engine.concurrency, 32);
    }

    #[test]
    fn postgres_url_defaults_to_postgres_queue() {
        let s = Settings::from_map(&vars(&[("DATABASE_URL", "postgres://a@h/d")])).unwrap();
        assert_eq!(s.queue_backend, QueueKind::Postgres);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            (vars(&[("QUEUE_BACKEND", "kafka")]), "QUEUE_BACKEND"),
            (
                vars(&[("DATABASE_URL", "mysql://u:secret@h/d")]),
                "DATABASE_URL",
            ),
            (vars(&[("HTTP_BIND", "8080")]), "HTTP_BIND"),
            (vars(&[("WORKER_CONCURRENCY", "0")]), "WORKER_CONCURRENCY"),
            (
                vars(&[("WORKER_CONCURRENCY", "lots")]),
                "WORKER_CONCURRENCY",
            ),
            (vars(&[("QUEUE_BACKEND", "redis")]), "REDIS_URL"),
            (vars(&[("LOG_FORMAT", "xml")]), "LOG_FORMAT"),
            (vars(&[("PROVIDER_CAPACITY", "fal")]), "PROVIDER_CAPACITY"),
            (
                vars(&[("SHUTDOWN_GRACE_SECS", "-1")]),
                "SHUTDOWN_GRACE_SECS",
            ),
            (vars(&[("QUEUE_BACKEND", "postgres")]), "QUEUE_BACKEND"),
            (vars(&[("ADMIN_TOKEN", "short")]), "ADMIN_TOKEN"),
        ];
        for (v, var) in cases {
            let err = Settings::from_map(&v).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_map(&vars(&[
            ("DATABASE_URL", "postgres://u:pg-secret@h/d"),
            ("ADMIN_TOKEN", "admin-secret-0123456789"),
            ("FAL_KEY", "fal-secret"),
            ("WEBHOOK_SECRET", "webhook-secret-0123456789abcdef0123"),
            ("S3_ENDPOINT", "http://minio:9000"),
            ("S3_BUCKET", "b"),
            ("S3_ACCESS_KEY_ID", "ak"),
            ("S3_SECRET_ACCESS_KEY", "s3-secret"),
        ]))
        .unwrap();
        let printed = format!("{s:?}");
        for secret in [
            "pg-secret",
            "admin-secret",
            "fal-secret",
            "webhook-secret",
            "s3-secret",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }

    #[test]
    fn provider_capacity_parses() {
        let s = Settings::from_map(&vars(&[("PROVIDER_CAPACITY", "fal=4, other=2")])).unwrap();
        assert_eq!(s.engine.provider_capacity.get("fal"), Some(&4));
        assert_eq!(s.engine.provider_capacity.get("other"), Some(&2));
    }
}
