use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "aisha",
    version,
    about = "Durable AI portrait workflows: one binary, every role"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every role in one process (or the ones named by --roles).
    Serve {
        /// Comma-separated roles: worker, http, bot (default: worker,http, plus bot when
        /// TELEGRAM_BOT_TOKEN is set).
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<Role>>,
    },
    /// Run the Telegram bot (updates, dialogues, payments, deliveries) plus /health, /ready,
    /// /metrics and, in webhook mode, POST /webhook/telegram.
    Bot,
    /// Run the workflow worker (steps, scheduler, reconciler) plus /health, /ready, /metrics.
    Worker,
    /// Run the FAL webhook API (plus /health, /ready, /metrics): stateless, run replicas.
    Webhook {
        /// Where to listen (default HTTP_BIND).
        #[arg(long)]
        bind: Option<String>,
    },
    /// The whole product on this machine, nothing configured: trains a demo avatar and makes
    /// portraits, showing every step; portraits are written under ./data/demo.
    Demo,
    /// Run a local FAL (queue API, signed webhooks, JWKS, files) for development and tests.
    SimFal(crate::sim::SimFalArgs),
    /// Run a local Telegram Bot API server (users driven through its /_sim/ routes).
    SimTelegram(crate::sim::SimTelegramArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Worker,
    Http,
    Bot,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Workflow runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Users' credits: grant, balance.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// What users were told (the delivery outbox), newest first.
    Outbox {
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Queue depths by status; `requeue-dead QUEUE` puts dead tasks back.
    Queues {
        #[command(subcommand)]
        command: Option<QueuesCommand>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone, Copy)]
pub struct JsonFlag {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show a run with its step timeline.
    Show {
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Run a failed run again from its failed step.
    Retry {
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Cancel a run (its compensation runs).
    Cancel {
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Start a run, as backoffice staff would for a customer.
    Start {
        workflow: String,
        /// The run's input, as JSON.
        #[arg(long)]
        input: String,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreditsCommand {
    /// Give a user credits (logged; with --key it applies once however often it is run).
    Grant {
        user: String,
        amount: i64,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// A user's balance.
    Balance {
        user: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum QueuesCommand {
    /// Put a queue's dead tasks back to pending.
    RequeueDead {
        /// Queue name (as listed) or workflow name.
        queue: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Throughput and latency of the engine running noop3.
    Engine(crate::bench::EngineBench),
    /// Signed FAL callbacks per second through the webhook API, and their latency.
    Webhook(crate::bench_webhook::WebhookBench),
    /// Telegram updates per second through the bot into runs on Postgres, and its memory.
    Telegram(crate::bench_telegram::TelegramBench),
}
