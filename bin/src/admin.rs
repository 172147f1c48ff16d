//! `aisha admin …`: the engine's operations for operators, as tables or JSON.

use aisha_engine::Engine;
use aisha_engine::StartOptions;
use aisha_engine::ops::{RunDetail, RunFilter, RunSummary};
use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{AdminCommand, QueuesCommand, RunsCommand};
use crate::settings::Settings;

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_runs(runs: &[RunSummary]) {
    println!(
        "{:<36}  {:<20} {:<10} {:<16} {:>3}  {:<14} {:<24}",
        "ID", "WORKFLOW", "STATUS", "STEP", "ATT", "SUBJECT", "UPDATED"
    );
    for r in runs {
        println!(
            "{:<36}  {:<20} {:<10} {:<16} {:>3}  {:<14} {:<24}",
            r.id,
            r.workflow,
            r.status,
            r.step,
            r.attempts,
            r.subject.as_deref().unwrap_or("-"),
            r.updated_at
        );
    }
}

fn print_detail(d: &RunDetail) {
    let r = &d.run;
    println!("run       {}", r.id);
    println!("workflow  {}", r.workflow);
    println!(
        "status    {} (step {}, attempt {})",
        r.status, r.step, r.attempts
    );
    println!("subject   {}", r.subject.as_deref().unwrap_or("-"));
    println!("created   {}", r.created_at);
    println!("updated   {}", r.updated_at);
    if let Some(e) = &r.error {
        println!("error     {e}");
    }
    if let Some(w) = &d.waiting_on {
        println!(
            "waiting   {}/{} (next poll {}, deadline {})",
            w.provider,
            w.external_id,
            w.next_poll_at.as_deref().unwrap_or("-"),
            w.deadline_at.as_deref().unwrap_or("-")
        );
    }
    if let Some(h) = &d.held {
        println!("held      {h}");
    }
    println!("timeline:");
    for t in &d.timeline {
        println!(
            "  {:<24} {:<16} #{:<2} {:<8} {:>7}  {}",
            t.started_at,
            t.step,
            t.attempt,
            t.outcome,
            t.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
            t.error.as_deref().unwrap_or("")
        );
    }
}

pub async fn run(engine: &Engine, settings: &Settings, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Runs { command } => runs(engine, command).await,
        AdminCommand::Credits { command } => {
            crate::admin_product::credits(engine, settings.credit_limits, command).await
        }
        AdminCommand::Outbox { user, limit, out } => {
            crate::admin_product::outbox(engine, user, limit, out).await
        }
        AdminCommand::Queues {
            command: None,
            json,
        } => {
            let depths = engine.queue_depths().await?;
            if json {
                return print_json(&depths);
            }
            println!(
                "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10} {:>12}",
                "QUEUE", "PENDING", "RUNNING", "FAILED", "DEAD", "DONE", "OLDEST (s)"
            );
            for d in depths {
                println!(
                    "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10} {:>12.1}",
                    d.queue,
                    d.pending,
                    d.running,
                    d.failed,
                    d.dead,
                    d.done,
                    d.oldest_pending_seconds
                );
            }
            Ok(())
        }
        AdminCommand::Queues {
            command: Some(QueuesCommand::RequeueDead { queue, json }),
            json: json_outer,
        } => {
            let n = engine.requeue_dead(&queue).await?;
            if json || json_outer {
                print_json(&serde_json::json!({"queue": queue, "requeued": n}))
            } else {
                println!("re-queued {n} dead task(s) of {queue}");
                Ok(())
            }
        }
    }
}

async fn runs(engine: &Engine, cmd: RunsCommand) -> anyhow::Result<()> {
    match cmd {
        RunsCommand::List {
            status,
            workflow,
            subject,
            limit,
            out,
        } => {
            let status = match status {
                Some(s) => Some(
                    s.parse()
                        .map_err(|e: String| anyhow::anyhow!("--status: expected {e}"))?,
                ),
                None => None,
            };
            let runs = engine
                .list_runs(&RunFilter {
                    status,
                    workflow,
                    subject,
                    limit: Some(limit),
                })
                .await?;
            if out.json {
                print_json(&runs)
            } else {
                print_runs(&runs);
                Ok(())
            }
        }
        RunsCommand::Show { id, out } => {
            let d = engine.show_run(&id).await?;
            if out.json {
                print_json(&d)
            } else {
                print_detail(&d);
                Ok(())
            }
        }
        RunsCommand::Retry { id, out } => {
            let r = engine.retry_run(&id).await?;
            if out.json {
                print_json(&r)
            } else {
                print_runs(&[r]);
                Ok(())
            }
        }
        RunsCommand::Cancel { id, out } => {
            let r = engine.cancel_run(&id).await?;
            if out.json {
                print_json(&r)
            } else {
                print_runs(&[r]);
                Ok(())
            }
        }
        RunsCommand::Start {
            workflow,
            input,
            subject,
            idempotency_key,
            out,
        } => {
            let input: serde_json::Value =
                serde_json::from_str(&input).context("--input: expected JSON")?;
            if !engine.workflow_names().contains(&workflow.as_str()) {
                bail!(
                    "unknown workflow `{workflow}`; workflows: {}",
                    engine.workflow_names().join(", ")
                );
            }
            let started = engine
                .start(
                    &workflow,
                    input,
                    StartOptions {
                        subject,
                        idempotency_key,
                        parent_run_id: None,
                    },
                )
                .await?;
            if out.json {
                print_json(&started)
            } else {
                println!(
                    "run {} {}",
                    started.run_id,
                    if started.created {
                        "started"
                    } else {
                        "already existed (same idempotency key)"
                    }
                );
                Ok(())
            }
        }
    }
}
