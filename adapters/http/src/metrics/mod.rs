//! Prometheus metrics. Names are an interface (dashboards and alerts use them): see the
//! README's metrics table before renaming anything. Label values are bounded: workflow, step,
//! queue, status, provider, outcome — never user ids, run ids or prompts.

mod http;
mod snapshot;

use std::time::Duration;

pub use http::{Observe, route};
use snapshot::SnapshotCounter;

use aisha_engine::{Engine, LoopName, Observer};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// How long a scrape waits for the database before rendering without the stored state
/// (well inside Prometheus's default 10 s scrape timeout).
const STORED_STATE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Metrics {
    registry: Registry,
    /// Providers whose waiting callbacks read 0, not "no data", when none wait (see
    /// [`Metrics::with_providers`]).
    providers: Vec<&'static str>,
    step_duration: HistogramVec,
    step_retries: IntCounterVec,
    progress_updates: IntCounterVec,
    runs_finished: IntCounterVec,
    callbacks_received: IntCounterVec,
    callback_wait: HistogramVec,
    runs: IntGaugeVec,
    queue_tasks: IntGaugeVec,
    oldest_pending: GaugeVec,
    callbacks_waiting: IntGaugeVec,
    fal_requests: IntCounterVec,
    fal_duration: HistogramVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    credits: std::sync::Arc<SnapshotCounter>,
    queue_workers_up: IntGaugeVec,
    queue_worker_restarts: std::sync::Arc<SnapshotCounter>,
    background_loops_up: IntGaugeVec,
    background_loop_restarts: std::sync::Arc<SnapshotCounter>,
    telegram_requests: IntCounterVec,
    telegram_updates: IntCounterVec,
}

/// Version and commit of this build, baked in by the build (`AISHA_COMMIT`).
pub fn build_info() -> (&'static str, &'static str) {
    (
        env!("CARGO_PKG_VERSION"),
        option_env!("AISHA_COMMIT").unwrap_or("unknown"),
    )
}

impl Metrics {
    /// `role` names the process (serve, worker, …) in `aisha_build_info`.
    pub fn new(role: &str) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let step_duration = HistogramVec::new(
            HistogramOpts::new("aisha_step_duration_seconds", "Duration of step attempts").buckets(
                vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0,
                ],
            ),
            &["workflow", "step", "outcome"],
        )?;
        let step_retries = IntCounterVec::new(
            Opts::new(
                "aisha_step_retries_total",
                "Step attempts that failed and were scheduled again",
            ),
            &["workflow", "step"],
        )?;
        let progress_updates = IntCounterVec::new(
            Opts::new(
                "aisha_progress_updates_total",
                "New progress recorded on parked runs by their workflow's progress hook",
            ),
            &["workflow"],
        )?;
        let runs_finished = IntCounterVec::new(
            Opts::new(
                "aisha_runs_finished_total",
                "Runs that reached a terminal status",
            ),
            &["workflow", "status"],
        )?;
        let callbacks_received = IntCounterVec::new(
            Opts::new("aisha_callbacks_received_total", "Callbacks by outcome"),
            &["provider", "outcome"],
        )?;
        let callback_wait = HistogramVec::new(
            HistogramOpts::new(
                "aisha_callback_wait_seconds",
                "Time from parking on a callback to its resolution",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0,
            ]),
            &["provider"],
        )?;
        let runs = IntGaugeVec::new(
            Opts::new("aisha_runs", "Runs by workflow and status"),
            &["workflow", "status"],
        )?;
        let queue_tasks = IntGaugeVec::new(
            Opts::new(
                "aisha_queue_tasks",
                "Queue tasks by status (pending, running, failed, dead)",
            ),
            &["queue", "status"],
        )?;
        let oldest_pending = GaugeVec::new(
            Opts::new(
                "aisha_oldest_pending_seconds",
                "Age of the oldest task waiting in a queue",
            ),
            &["queue"],
        )?;
        let callbacks_waiting = IntGaugeVec::new(
            Opts::new(
                "aisha_callbacks_waiting",
                "Runs parked on an outside callback",
            ),
            &["provider"],
        )?;
        let fal_requests = IntCounterVec::new(
            Opts::new(
                "aisha_fal_requests_total",
                "Calls to FAL's queue API by app, operation and answer (HTTP status, transport, decode, ok)",
            ),
            &["app", "op", "status"],
        )?;
        let fal_duration = HistogramVec::new(
            HistogramOpts::new(
                "aisha_fal_request_duration_seconds",
                "Duration of calls to FAL's queue API",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["app", "op"],
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "aisha_http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "aisha_http_request_duration_seconds",
                "HTTP request latency by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route"],
        )?;
        let credits = std::sync::Arc::new(SnapshotCounter::new(
            "aisha_credits_total",
            "Credits by kind (granted, purchased, captured, refunded), from the ledger",
            "kind",
        )?);
        let queue_workers_up = IntGaugeVec::new(
            Opts::new(
                "aisha_queue_workers_up",
                "Queue workers of this process taking work, by queue (0: stopped, being restarted)",
            ),
            &["queue"],
        )?;
        let queue_worker_restarts = std::sync::Arc::new(SnapshotCounter::new(
            "aisha_queue_worker_restarts_total",
            "Restarts of this process's queue workers after they stopped, by queue",
            "queue",
        )?);
        let background_loops_up = IntGaugeVec::new(
            Opts::new(
                "aisha_background_loops_up",
                "Background loops of this process running, by loop (0: stopped, being restarted)",
            ),
            &["loop"],
        )?;
        let background_loop_restarts = std::sync::Arc::new(SnapshotCounter::new(
            "aisha_background_loop_restarts_total",
            "Restarts of this process's background loops after they stopped, by loop",
            "loop",
        )?);
        let build = IntGaugeVec::new(
            Opts::new(
                "aisha_build_info",
                "Build of this process; the value is always 1",
            ),
            &["version", "commit", "role"],
        )?;
        let telegram_requests = IntCounterVec::new(
            Opts::new(
                "aisha_telegram_requests_total",
                "Calls to the Telegram Bot API by method and outcome (ok, retry_after, api_error, network)",
            ),
            &["method", "outcome"],
        )?;
        let telegram_updates = IntCounterVec::new(
            Opts::new(
                "aisha_telegram_updates_total",
                "Telegram updates by kind and outcome (stored, duplicate, handled, failed)",
            ),
            &["kind", "outcome"],
        )?;
        let (version, commit) = build_info();
        build.with_label_values(&[version, commit, role]).set(1);
        for c in [
            Box::new(step_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(step_retries.clone()),
            Box::new(progress_updates.clone()),
            Box::new(runs_finished.clone()),
            Box::new(callbacks_received.clone()),
            Box::new(callback_wait.clone()),
            Box::new(runs.clone()),
            Box::new(queue_tasks.clone()),
            Box::new(oldest_pending.clone()),
            Box::new(callbacks_waiting.clone()),
            Box::new(fal_requests.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(SharedCollector(credits.clone())),
            Box::new(queue_workers_up.clone()),
            Box::new(SharedCollector(queue_worker_restarts.clone())),
            Box::new(background_loops_up.clone()),
            Box::new(SharedCollector(background_loop_restarts.clone())),
            Box::new(fal_duration.clone()),
            Box::new(telegram_requests.clone()),
            Box::new(telegram_updates.clone()),
            Box::new(build),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry.register(c)?;
        }
        Ok(Metrics {
            registry,
            providers: Vec::new(),
            step_duration,
            step_retries,
            progress_updates,
            runs_finished,
            callbacks_received,
            callback_wait,
            runs,
            queue_tasks,
            oldest_pending,
            callbacks_waiting,
            fal_requests,
            fal_duration,
            http_requests,
            http_duration,
            credits,
            queue_workers_up,
            queue_worker_restarts,
            background_loops_up,
            background_loop_restarts,
            telegram_requests,
            telegram_updates,
        })
    }

    /// The callback providers this process knows (`aisha_fal::PROVIDER`, the user's own
    /// answers…): their `aisha_callbacks_waiting` reads 0 rather than "no data" when nothing
    /// waits, so a dashboard can tell "none" from "not scraped".
    pub fn with_providers(mut self, providers: &[&'static str]) -> Metrics {
        self.providers = providers.to_vec();
        self
    }

    pub fn telegram_request(&self, method: &str, outcome: &str) {
        self.telegram_requests
            .with_label_values(&[method, outcome])
            .inc();
    }

    pub fn telegram_update(&self, kind: &str, outcome: &str) {
        self.telegram_updates
            .with_label_values(&[kind, outcome])
            .inc();
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }

    pub fn fal_request(&self, app: &str, op: &str, status: &str, took: Duration) {
        self.fal_requests
            .with_label_values(&[app, op, status])
            .inc();
        self.fal_duration
            .with_label_values(&[app, op])
            .observe(took.as_secs_f64());
    }

    /// Counts a callback outcome decided outside the engine (bad_signature, bad_token, …).
    pub fn callback_outcome(&self, provider: &str, outcome: &str) {
        self.callbacks_received
            .with_label_values(&[provider, outcome])
            .inc();
    }

    /// Reads the gauges that describe this process's loops and the stored state, then renders
    /// everything. When the database does not answer, the stored-state metrics are left out
    /// (not shown stale) and the rest is still rendered: an outage is when the loop gauges
    /// matter most.
    pub async fn render(&self, engine: &Engine) -> Result<String, String> {
        self.read_loops(engine);
        let stored = tokio::time::timeout(STORED_STATE_TIMEOUT, self.read_stored_state(engine))
            .await
            .unwrap_or_else(|_| Err("the database did not answer in time".into()));
        if let Err(e) = stored {
            tracing::warn!(error = %e, "metrics: stored state unreadable; rendering the rest");
            self.runs.reset();
            self.queue_tasks.reset();
            self.oldest_pending.reset();
            self.callbacks_waiting.reset();
            self.credits.set(Vec::new());
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }

    fn read_loops(&self, engine: &Engine) {
        self.queue_workers_up.reset();
        self.background_loops_up.reset();
        let (mut queue_restarts, mut loop_restarts) = (Vec::new(), Vec::new());
        for (name, state) in engine.health().snapshot() {
            let up = i64::from(state.up);
            match &name {
                LoopName::QueueWorker(queue) => {
                    self.queue_workers_up.with_label_values(&[queue]).add(up);
                    queue_restarts.push((queue.clone(), state.restarts as f64));
                }
                LoopName::Background(name) => {
                    self.background_loops_up.with_label_values(&[name]).add(up);
                    loop_restarts.push((name.to_string(), state.restarts as f64));
                }
            }
        }
        self.queue_worker_restarts.set(queue_restarts);
        self.background_loop_restarts.set(loop_restarts);
    }

    async fn read_stored_state(&self, engine: &Engine) -> Result<(), String> {
        let counts = engine.run_counts().await.map_err(|e| e.to_string())?;
        self.runs.reset();
        for wf in engine.workflow_names() {
            for st in aisha_engine::RunStatus::ALL {
                self.runs.with_label_values(&[wf, st.as_str()]).set(0);
            }
        }
        for c in counts {
            self.runs
                .with_label_values(&[c.workflow.as_str(), c.status.as_str()])
                .set(c.count);
        }
        let depths = engine.queue_depths().await.map_err(|e| e.to_string())?;
        for d in depths {
            for (status, n) in [
                ("pending", d.pending),
                ("running", d.running),
                ("failed", d.failed),
                ("dead", d.dead),
            ] {
                self.queue_tasks
                    .with_label_values(&[&d.queue, status])
                    .set(n);
            }
            self.oldest_pending
                .with_label_values(&[&d.queue])
                .set(d.oldest_pending_seconds);
        }
        let waiting = engine
            .callbacks_waiting()
            .await
            .map_err(|e| e.to_string())?;
        self.callbacks_waiting.reset();
        // The providers we know read 0, not "no data", when nothing waits.
        for provider in &self.providers {
            self.callbacks_waiting.with_label_values(&[provider]).set(0);
        }
        for (provider, n) in waiting {
            self.callbacks_waiting
                .with_label_values(&[&provider])
                .set(n);
        }
        // The ledger's figures are one panel among many: if they cannot be read, the scrape
        // still answers with everything else (and the credits keep their last value).
        match aisha_workflows::credits::Ledger::new(engine.db().clone())
            .totals()
            .await
        {
            Ok(totals) => self.credits.set(
                totals
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: cannot sum the credits ledger"),
        }
        Ok(())
    }
}

impl Observer for Metrics {
    fn step_finished(&self, workflow: &str, step: &str, outcome: &str, took: Duration) {
        self.step_duration
            .with_label_values(&[workflow, step, outcome])
            .observe(took.as_secs_f64());
    }

    fn step_retried(&self, workflow: &str, step: &str) {
        self.step_retries.with_label_values(&[workflow, step]).inc();
    }

    fn progress(&self, workflow: &str) {
        self.progress_updates.with_label_values(&[workflow]).inc();
    }

    fn run_finished(&self, _run_id: &str, workflow: &str, status: &str) {
        self.runs_finished
            .with_label_values(&[workflow, status])
            .inc();
    }

    fn callback(&self, provider: &str, outcome: &str) {
        self.callback_outcome(provider, outcome);
    }

    fn callback_waited(&self, provider: &str, waited: Duration) {
        self.callback_wait
            .with_label_values(&[provider])
            .observe(waited.as_secs_f64());
    }
}

/// Registers a collector the metrics keep a handle to.
struct SharedCollector(std::sync::Arc<SnapshotCounter>);

impl prometheus::core::Collector for SharedCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}
