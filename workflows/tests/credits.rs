//! The credits ledger on real databases: idempotent entries, no negative balance under
//! concurrent reservations, refunds bounded by what a run reserved, invariants always hold.

use aisha_engine::testkit::TestDb;
use aisha_engine::{Pools, QueueKind};
use aisha_workflows::credits::{Applied, CreditLimits, CreditsError, Kind, Ledger};

async fn ledger(kind: QueueKind) -> (TestDb, Ledger) {
    let t = TestDb::new(kind).await;
    let db = Pools::connect(&t.url, 20).await.unwrap().db;
    db.migrate().await.unwrap();
    db.apply(&aisha_workflows::MIGRATIONS).await.unwrap();
    (t, Ledger::new(db))
}

async fn assert_invariants(l: &Ledger) {
    let inv = l.check().await.unwrap();
    assert!(
        inv.balance_mismatches.is_empty() && inv.bad_runs.is_empty(),
        "{inv:?}"
    );
}

async fn lifecycle(kind: QueueKind) {
    let (t, l) = ledger(kind).await;
    assert_eq!(
        l.add("u1", Kind::Grant, 200, "welcome", "welcome-u1")
            .await
            .unwrap(),
        Applied::New
    );
    assert_eq!(
        l.add("u1", Kind::Grant, 200, "welcome", "welcome-u1")
            .await
            .unwrap(),
        Applied::Already
    );
    assert_eq!(l.balance("u1").await.unwrap(), 200);

    // A run reserves; its retry reserves nothing more.
    assert_eq!(
        l.reserve("u1", "run-a", "avatar", 150).await.unwrap(),
        Applied::New
    );
    assert_eq!(
        l.reserve("u1", "run-a", "avatar", 150).await.unwrap(),
        Applied::Already
    );
    assert_eq!(l.balance("u1").await.unwrap(), 50);
    assert_eq!(
        l.capture("u1", "run-a", "avatar").await.unwrap(),
        Applied::New
    );
    assert_eq!(
        l.capture("u1", "run-a", "avatar").await.unwrap(),
        Applied::Already
    );

    // Not enough: a clear error and nothing changes.
    let e = l.reserve("u1", "run-b", "avatar", 150).await.unwrap_err();
    assert!(
        matches!(
            e,
            CreditsError::Insufficient {
                needed: 150,
                balance: 50
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "not enough credits: 150 needed, 50 available"
    );
    assert_eq!(l.held_by_run("run-b").await.unwrap(), 0);

    // Partial refunds up to the reservation, each once.
    assert_eq!(
        l.reserve("u1", "run-c", "images", 20).await.unwrap(),
        Applied::New
    );
    assert_eq!(
        l.refund("u1", "run-c", "nsfw-1", 5).await.unwrap(),
        Applied::New
    );
    assert_eq!(
        l.refund("u1", "run-c", "nsfw-1", 5).await.unwrap(),
        Applied::Already
    );
    assert_eq!(l.held_by_run("run-c").await.unwrap(), 15);
    let e = l.refund("u1", "run-c", "failed", 16).await.unwrap_err();
    assert!(
        matches!(e, CreditsError::RefundTooLarge { left: 15, .. }),
        "{e}"
    );
    assert_eq!(
        l.refund("u1", "run-c", "failed", 15).await.unwrap(),
        Applied::New
    );
    assert_eq!(l.balance("u1").await.unwrap(), 50);
    assert!(matches!(
        l.add("u1", Kind::Grant, 0, "x", "k").await,
        Err(CreditsError::NotPositive(0))
    ));
    assert_invariants(&l).await;
    t.drop_db().await;
}

#[tokio::test]
async fn lifecycle_postgres() {
    lifecycle(QueueKind::Postgres).await;
}

#[tokio::test]
async fn lifecycle_sqlite() {
    lifecycle(QueueKind::Sqlite).await;
}

async fn concurrent_reservations_never_overdraw(kind: QueueKind) {
    let (t, l) = ledger(kind).await;
    l.add("u2", Kind::Purchase, 50, "stars", "charge-1")
        .await
        .unwrap();
    // 30 runs of 5 credits race for 50 credits; some also retry.
    let results = futures::future::join_all((0..30).map(|i| {
        let l = l.clone();
        async move {
            let run = format!("run-{}", i % 25);
            l.reserve("u2", &run, "image", 5).await
        }
    }))
    .await;
    let new = results
        .iter()
        .filter(|r| matches!(r, Ok(Applied::New)))
        .count();
    let short = results
        .iter()
        .filter(|r| matches!(r, Err(CreditsError::Insufficient { .. })))
        .count();
    assert_eq!(new, 10, "{results:?}");
    assert_eq!(
        new + short
            + results
                .iter()
                .filter(|r| matches!(r, Ok(Applied::Already)))
                .count(),
        30
    );
    assert_eq!(l.balance("u2").await.unwrap(), 0);
    assert_invariants(&l).await;
    t.drop_db().await;
}

#[tokio::test]
async fn concurrent_reservations_never_overdraw_postgres() {
    concurrent_reservations_never_overdraw(QueueKind::Postgres).await;
}

#[tokio::test]
async fn concurrent_reservations_never_overdraw_sqlite() {
    concurrent_reservations_never_overdraw(QueueKind::Sqlite).await;
}

/// MAX_GRANT, MAX_BALANCE and the CHECK on the account row: out of bounds is refused and
/// writes nothing; totals survive ledger data no bound would let in today.
async fn bounded(kind: QueueKind) {
    let t = TestDb::new(kind).await;
    let db = Pools::connect(&t.url, 5).await.unwrap().db;
    db.migrate().await.unwrap();
    db.apply(&aisha_workflows::MIGRATIONS).await.unwrap();
    let l = Ledger::with_limits(
        db.clone(),
        CreditLimits {
            max_grant: 1000,
            max_balance: 1500,
        },
    );
    // The probe's pair: the largest i64, then 1 more than allowed. Refused, nothing written.
    for amount in [i64::MAX, 1001] {
        let r = l
            .add("u1", Kind::Grant, amount, "x", &format!("big-{amount}"))
            .await;
        assert!(
            matches!(r, Err(CreditsError::OverMaxGrant { max: 1000, .. })),
            "{r:?}"
        );
    }
    l.add("u1", Kind::Grant, 1000, "x", "g1").await.unwrap();
    let over = l.add("u1", Kind::Purchase, 600, "stars", "c1").await;
    assert!(
        matches!(
            over,
            Err(CreditsError::OverMaxBalance {
                balance: 1000,
                max: 1500,
                ..
            })
        ),
        "{over:?}"
    );
    assert!(over.unwrap_err().to_string().contains("MAX_BALANCE"));
    assert_eq!(l.balance("u1").await.unwrap(), 1000);
    assert_eq!(l.entries("u1", 10).await.unwrap().len(), 1, "no ledger row");
    l.add("u1", Kind::Grant, 500, "x", "g2").await.unwrap();

    // A refund gives back what a run took, even past MAX_BALANCE.
    l.reserve("u1", "run-1", "image", 100).await.unwrap();
    l.add("u1", Kind::Grant, 100, "x", "g3").await.unwrap();
    l.refund("u1", "run-1", "failed", 100).await.unwrap();
    assert_eq!(l.balance("u1").await.unwrap(), 1600);
    assert_invariants(&l).await;

    // The database itself refuses a balance over the ceiling (and, on SQLite, a REAL).
    for sql in [
        "UPDATE credit_accounts SET balance = 1000000000000001",
        "UPDATE credit_accounts SET balance = balance + 9223372036854775000",
    ] {
        let r = aisha_engine::on_db!(&db, p => sqlx::query(sql).execute(p).await.map(|_| ()));
        assert!(r.is_err(), "{sql}");
    }
    assert_eq!(l.balance("u1").await.unwrap(), 1600);

    // Ledger rows written before the bounds (the probe's) still sum.
    for (i, amount) in [i64::MAX, 1].into_iter().enumerate() {
        aisha_engine::on_db!(&db, p => sqlx::query(
            "INSERT INTO credit_ledger (id, user_id, kind, amount, run_id, reason, idempotency_key, created_at) \
             VALUES ($1, 'old', 'grant', $2, NULL, 'probe', $1, 0)",
        )
        .bind(format!("old-{i}"))
        .bind(amount)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
    }
    let totals = l.totals().await.unwrap();
    assert_eq!(totals[0].0, "granted");
    assert!(totals[0].1 > 9.2e18, "{totals:?}");
    db.close().await;
    t.drop_db().await;
}

#[tokio::test]
async fn bounded_postgres() {
    bounded(QueueKind::Postgres).await;
}

#[tokio::test]
async fn bounded_sqlite() {
    bounded(QueueKind::Sqlite).await;
}

#[test]
fn a_short_balance_fails_the_step_for_good_a_database_error_is_retried() {
    use aisha_engine::StepError;
    let short = StepError::from(CreditsError::Insufficient {
        needed: 150,
        balance: 100,
    });
    assert!(
        matches!(&short, StepError::Permanent(m) if m.contains("150 needed, 100 available")),
        "{short}"
    );
    assert!(StepError::from(CreditsError::NotPositive(0)).is_permanent());
    assert!(matches!(
        StepError::from(CreditsError::Db(sqlx::Error::PoolTimedOut)),
        StepError::Retryable(_)
    ));
}
