//! `aisha admin credits …` and `aisha admin outbox`: the ledger and what users were told.

use aisha_engine::Engine;
use aisha_telegram::copy::copy;
use aisha_telegram::lang::Lang;
use aisha_workflows::credits::{Applied, CreditLimits, Kind, Ledger};
use aisha_workflows::outbox::{Outbox, Payload};
use serde_json::json;

use crate::cli::{CreditsCommand, JsonFlag};

fn print(json_out: bool, v: serde_json::Value, text: String) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{text}");
    }
    Ok(())
}

pub async fn credits(
    engine: &Engine,
    limits: CreditLimits,
    cmd: CreditsCommand,
) -> anyhow::Result<()> {
    let ledger = Ledger::with_limits(engine.db().clone(), limits);
    match cmd {
        CreditsCommand::Grant {
            user,
            amount,
            reason,
            key,
            out,
        } => {
            // Without a key a grant is one operator action: a new key each time.
            let key = key.unwrap_or_else(|| ulid::Ulid::generate().to_string());
            let applied = ledger
                .add(&user, Kind::Grant, amount, &reason, &key)
                .await?;
            let balance = ledger.balance(&user).await?;
            tracing::info!(user = ?user, amount, reason = ?reason, ?applied, "operator granted credits");
            let text = match applied {
                Applied::New => format!("granted {amount} to {user}: balance {balance}"),
                Applied::Already => format!("grant {key} was applied before: balance {balance}"),
            };
            print(
                out.json,
                json!({"user_id": user, "applied": applied, "balance": balance}),
                text,
            )
        }
        CreditsCommand::Balance { user, out } => {
            let balance = ledger.balance(&user).await?;
            print(
                out.json,
                json!({"user_id": user, "balance": balance}),
                format!("{user}: {balance}"),
            )
        }
    }
}

pub async fn outbox(
    engine: &Engine,
    user: Option<String>,
    limit: i64,
    out: JsonFlag,
) -> anyhow::Result<()> {
    let rows = Outbox::new(engine.db().clone())
        .list(user.as_deref(), limit)
        .await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<26} {:<16} {:<20} {:<12} {:<6} TEXT",
        "ID", "USER", "KIND", "STEP", "SENT"
    );
    for r in rows {
        // In English, as the bot words it for English speakers.
        let text = match Payload::decode(&r.payload) {
            Ok(Payload::Notice(n)) => copy(Lang::En).notice(&n),
            Ok(Payload::Rendered(t)) => t.text_en,
            Err(_) => String::new(),
        };
        println!(
            "{:<26} {:<16} {:<20} {:<12} {:<6} {}",
            r.id,
            r.user_id,
            r.kind,
            r.step,
            if r.sent_at.is_some() { "yes" } else { "no" },
            text.lines().next().unwrap_or("")
        );
    }
    Ok(())
}
