//! The avatars store on real databases: what a waiting training is told about its time left.

use std::time::Duration;

use aisha_engine::testkit::TestDb;
use aisha_engine::{Pools, QueueKind};
use aisha_workflows::avatars::{Avatars, NewAvatar, Preset};
use aisha_workflows::blob::BlobKey;

async fn typical_training_is_the_median_of_the_finished_ones(kind: QueueKind) {
    let t = TestDb::new(kind).await;
    let db = Pools::connect(&t.url, 5).await.unwrap().db;
    db.migrate().await.unwrap();
    db.apply(&aisha_workflows::MIGRATIONS).await.unwrap();
    let avatars = Avatars::new(db);

    // None finished yet: the preset's expectation.
    assert_eq!(
        avatars.typical_training(Preset::Fast).await.unwrap(),
        Preset::Fast.expected()
    );
    for i in 0..3 {
        let id = format!("run-{i}");
        let made = avatars
            .create(&NewAvatar {
                id: &id,
                user_id: "u1",
                name: "Me",
                trigger_phrase: &format!("tok{i}"),
                preset: Preset::Fast,
            })
            .await
            .unwrap();
        assert!(made);
        let lora = BlobKey::new(&["avatars", &id, "lora.safetensors"]).unwrap();
        avatars.ready(&id, &lora).await.unwrap();
    }
    // A training still under way, and a failed one, say nothing about how long one takes.
    for (id, fail) in [("run-busy", false), ("run-failed", true)] {
        avatars
            .create(&NewAvatar {
                id,
                user_id: "u1",
                name: "Me",
                trigger_phrase: id,
                preset: Preset::Fast,
            })
            .await
            .unwrap();
        if fail {
            avatars.failed(id, "trainer error").await.unwrap();
        }
    }
    // Each of the three was ready within moments of its creation.
    let typical = avatars.typical_training(Preset::Fast).await.unwrap();
    assert!(typical < Duration::from_secs(60), "{typical:?}");
    // Another preset has none of its own.
    assert_eq!(
        avatars.typical_training(Preset::Quality).await.unwrap(),
        Preset::Quality.expected()
    );
    t.drop_db().await;
}

#[tokio::test]
async fn typical_training_sqlite() {
    typical_training_is_the_median_of_the_finished_ones(QueueKind::Sqlite).await;
}

#[tokio::test]
async fn typical_training_postgres() {
    typical_training_is_the_median_of_the_finished_ones(QueueKind::Postgres).await;
}
