//! Test helpers (feature `testkit`): a fresh database per test — a Postgres database or a
//! SQLite file — and a queue namespace of its own, so tests run in parallel.

pub mod noop3;
pub mod servers;

use std::time::Duration;

use crate::{EngineConfig, QueueKind};

pub const ADMIN_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const REDIS: &str = "redis://127.0.0.1:6379/";

pub fn admin_pg() -> String {
    std::env::var("AISHA_TEST_PG").unwrap_or_else(|_| ADMIN_PG.into())
}

pub fn redis_url() -> String {
    std::env::var("AISHA_TEST_REDIS").unwrap_or_else(|_| REDIS.into())
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    pub kind: QueueKind,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(kind: QueueKind) -> TestDb {
        let tag = ulid::Ulid::generate().to_string().to_lowercase();
        match kind {
            QueueKind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite:{}", dir.path().join("aisha.db").display());
                TestDb {
                    url,
                    kind,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            QueueKind::Postgres | QueueKind::Redis => {
                let name = format!("aisha_t_{tag}");
                let admin = sqlx::PgPool::connect(&admin_pg())
                    .await
                    .expect("admin postgres");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create database");
                admin.close().await;
                let base = admin_pg();
                let url = format!("{}/{name}", &base[..base.rfind('/').expect("db url")]);
                TestDb {
                    url,
                    kind,
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    pub async fn drop_db(&self) {
        if let Some(name) = &self.pg_name
            && let Ok(admin) = sqlx::PgPool::connect(&admin_pg()).await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

/// A queue namespace no other test uses (Redis keys are prefixed with it).
pub fn namespace() -> String {
    format!("t{}", ulid::Ulid::generate().to_string().to_lowercase())
}

/// Runs one statement with one text parameter on either database (tests that tamper with
/// state to simulate a crash or a lost task).
pub async fn execute(db: &crate::Db, sql: &'static str, param: &str) {
    crate::on_db!(db, p => sqlx::query(sql).bind(param).execute(p).await.map(|_| ()))
        .expect("execute");
}

/// Engine settings for tests: a namespace of its own, and ticks, leases and reconciling fast
/// enough that recovery happens within a test.
pub fn fast_config() -> EngineConfig {
    EngineConfig {
        namespace: namespace(),
        concurrency: 8,
        lease_grace: Duration::from_millis(500),
        tick: Duration::from_millis(50),
        reconcile_every: Duration::from_millis(200),
        stale_after: Duration::from_secs(2),
        retention: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(5),
        ..EngineConfig::default()
    }
}

/// A step of `workflow` that succeeded on run `run_id` at `seq` (claimed at `attempt` 1),
/// going on to `next` (None: the run ends) with `state`.
pub struct StepDone {
    pub run_id: String,
    pub seq: i64,
    pub workflow: String,
    pub step: String,
    pub next: Option<String>,
    pub state: String,
}

/// Applies `steps` as ONE group commit of step transitions (one transaction), as the worker
/// does with the transitions that are ready at the same moment; returns, per step, whether
/// its run was still where the step left it.
pub async fn commit_step_transitions(
    engine: &crate::Engine,
    steps: Vec<StepDone>,
) -> crate::error::Result<Vec<bool>> {
    use crate::group_commit::Apply;
    let batch: Vec<crate::step_writes::StepOk> = steps
        .into_iter()
        .map(|s| crate::step_writes::StepOk {
            run_id: s.run_id,
            seq: s.seq,
            workflow: s.workflow,
            step: s.step,
            attempt: 1,
            next: s.next,
            state: s.state,
            started: crate::time::now_ms(),
        })
        .collect();
    engine.inner.step_ok.applier().apply(&batch).await
}
