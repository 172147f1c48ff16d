//! The UI's HTML (maud: markup checked at compile time, every value escaped). No script and
//! no inline style anywhere: the CSP allows neither; the looks are in `style.css`.

use aisha_engine::ops::{RunDetail, RunFilter, RunSummary, TimelineEntry};
use aisha_engine::{QueueDepth, RunStatus};
use maud::{DOCTYPE, Markup, html};

/// The page frame; `signed_in` adds the navigation and the logout button.
fn page(title: &str, signed_in: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Aisha admin" }
                link rel="stylesheet" href="/admin/ui/style.css";
            }
            body {
                header {
                    a.brand href="/admin/ui" { "Aisha admin" }
                    @if signed_in {
                        form.logout method="post" action="/admin/ui/logout" {
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form; `error` says why the last attempt was refused.
pub fn login(error: Option<&str>) -> Markup {
    page(
        "Log in",
        false,
        html! {
            h1 { "Log in" }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form.login method="post" action="/admin/ui/login" {
                label for="token" { "Admin token (ADMIN_TOKEN)" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The runs list with its filter, and the queues.
pub fn runs(filter: &RunFilter, runs: &[RunSummary], queues: &[QueueDepth]) -> Markup {
    let status = filter.status.map(|s| s.as_str()).unwrap_or("");
    page(
        "Runs",
        true,
        html! {
            h1 { "Runs" }
            form.filter method="get" action="/admin/ui" {
                label { "Status "
                    select name="status" {
                        option value="" selected[status.is_empty()] { "any" }
                        @for s in RunStatus::ALL {
                            option value=(s.as_str()) selected[status == s.as_str()] { (s.as_str()) }
                        }
                    }
                }
                label { "Workflow "
                    input type="text" name="workflow" value=(filter.workflow.as_deref().unwrap_or(""));
                }
                label { "Subject "
                    input type="text" name="subject" value=(filter.subject.as_deref().unwrap_or(""));
                }
                button type="submit" { "Filter" }
            }
            @if runs.is_empty() {
                p.empty { "No runs match." }
            } @else {
                div.scroll {
                    table #runs {
                        thead { tr {
                            th { "Run" } th { "Workflow" } th { "Status" } th { "Step" }
                            th { "Attempt" } th { "Subject" } th { "Updated" } th { "Error" }
                        } }
                        tbody {
                            @for r in runs {
                                tr {
                                    td { a.run href=(format!("/admin/ui/runs/{}", r.id)) { (r.id) } }
                                    td { (r.workflow) }
                                    td { (status_badge(r.status)) }
                                    td { (r.step) }
                                    td.num { (r.attempts) }
                                    td { (r.subject.as_deref().unwrap_or("")) }
                                    td.time { (r.updated_at) }
                                    td.error { (r.error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Queues" }
            div.scroll {
                table #queues {
                    thead { tr {
                        th { "Queue" } th { "Pending" } th { "Running" } th { "Failed" }
                        th { "Dead" } th { "Oldest pending" }
                    } }
                    tbody {
                        @for q in queues {
                            tr {
                                td { (q.queue) }
                                td.num { (q.pending) }
                                td.num { (q.running) }
                                td.num { (q.failed) }
                                td.num { (q.dead) }
                                td.num { (age(q.oldest_pending_seconds)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One run: what it is, the buttons that apply to it, its step timeline with errors.
/// `notice` says what the last action did.
pub fn run(d: &RunDetail, notice: Option<&str>) -> Markup {
    let r = &d.run;
    page(
        &format!("Run {}", r.id),
        true,
        html! {
            h1 { "Run " span.id { (r.id) } }
            @if let Some(n) = notice {
                p.notice role="status" { (n) }
            }
            dl.facts {
                dt { "Status" } dd #status { (status_badge(r.status)) }
                dt { "Workflow" } dd { (r.workflow) }
                dt { "Step" } dd { (r.step) " (attempt " (r.attempts) ")" }
                @if let Some(s) = &r.subject { dt { "Subject" } dd { (s) } }
                @if let Some(f) = &d.failed_step { dt { "Failed at" } dd { (f) } }
                @if let Some(e) = &r.error { dt { "Error" } dd.error { (e) } }
                @if let Some(w) = &d.waiting_on {
                    dt { "Waiting on" }
                    dd { (w.provider) " " (w.external_id)
                        @if let Some(t) = &w.deadline_at { ", deadline " (t) }
                        @if let Some(t) = &w.next_poll_at { ", next poll " (t) }
                    }
                }
                @if let Some(h) = &d.held { dt { "Held" } dd { (format!("{h:?}")) } }
                @if let Some(p) = &d.progress {
                    dt { "Progress" }
                    dd #progress { (progress_text(p))
                        @if let Some(t) = &d.progress_at { " (" (t) ")" }
                    }
                }
                dt { "Created" } dd { (r.created_at) }
                dt { "Updated" } dd { (r.updated_at) }
                @if let Some(t) = &d.finished_at { dt { "Finished" } dd { (t) } }
                @if let Some(p) = &d.parent_run_id {
                    dt { "Parent" } dd { a href=(format!("/admin/ui/runs/{p}")) { (p) } }
                }
            }
            div.actions {
                @if r.status == RunStatus::Failed {
                    form method="post" action=(format!("/admin/ui/runs/{}/retry", r.id)) {
                        button #retry type="submit" { "Retry from " (d.failed_step.as_deref().unwrap_or(&r.step)) }
                    }
                }
                @if !r.status.is_terminal() {
                    form method="post" action=(format!("/admin/ui/runs/{}/cancel", r.id)) {
                        button #cancel.danger type="submit" { "Cancel" }
                    }
                }
                a.button href=(format!("/admin/ui/runs/{}", r.id)) { "Refresh" }
            }
            h2 { "Timeline" }
            div.scroll {
                table #timeline {
                    thead { tr {
                        th { "Step" } th { "Attempt" } th { "Outcome" } th { "Started" }
                        th { "Took" } th { "Worker" } th { "Error" }
                    } }
                    tbody {
                        @for t in &d.timeline { (timeline_row(t)) }
                    }
                }
            }
            h2 { "State" }
            pre.state { (serde_json::to_string_pretty(&d.state).unwrap_or_default()) }
        },
    )
}

fn timeline_row(t: &TimelineEntry) -> Markup {
    html! {
        tr class=(format!("outcome-{}", t.outcome)) {
            td { (t.step) }
            td.num { (t.attempt) }
            td { (t.outcome) }
            td.time { (t.started_at) }
            td.num { @if let Some(ms) = t.duration_ms { (ms) " ms" } }
            td { (t.worker.as_deref().unwrap_or("")) }
            td.error { (t.error.as_deref().unwrap_or("")) }
        }
    }
}

/// A refusal or an outage, as a page.
pub fn problem(title: &str, message: &str, signed_in: bool) -> Markup {
    page(
        title,
        signed_in,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/admin/ui" { "Back to the runs" } }
        },
    )
}

fn status_badge(s: RunStatus) -> Markup {
    html! { span class=(format!("status {}", s.as_str())) { (s.as_str()) } }
}

/// `42 s`, `3 min`, `2.5 h`; a dash for an empty queue.
fn age(seconds: f64) -> String {
    match seconds {
        s if s <= 0.0 => "—".into(),
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// A progress hook's report, as the workflow wrote it (`{"stage": "running", "percent": 40}`),
/// in one line: `running, percent 40`. The engine keeps it opaque, so the page does too.
fn progress_text(p: &serde_json::Value) -> String {
    let serde_json::Value::Object(fields) = p else {
        return p.to_string();
    };
    let stage = fields.get("stage").and_then(|s| s.as_str());
    let rest = fields
        .iter()
        .filter(|(k, v)| *k != "stage" && !v.is_null())
        .map(|(k, v)| match v.as_str() {
            Some(s) => format!("{k} {s}"),
            None => format!("{k} {v}"),
        });
    stage
        .map(str::to_string)
        .into_iter()
        .chain(rest)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::progress_text;

    #[test]
    fn progress_reads_as_its_stage_then_its_figures() {
        assert_eq!(
            progress_text(&json!({"stage": "running", "percent": 40})),
            "running, percent 40"
        );
        assert_eq!(
            progress_text(&json!({"stage": "queued", "position": null})),
            "queued"
        );
        assert_eq!(progress_text(&json!("saving")), "\"saving\"");
    }
}
