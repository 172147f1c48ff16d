use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Every connection of the pool stayed busy for the acquire timeout (or the database
    /// refused new ones): the caller retries later.
    #[error(
        "no database connection free within {}s (DB_MAX_CONNECTIONS caps them); try again",
        crate::config::ACQUIRE_TIMEOUT.as_secs()
    )]
    NoConnection,
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("queue error ({backend}): {message}")]
    Queue {
        backend: &'static str,
        message: String,
    },
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    #[error("no run with id `{0}`")]
    UnknownRun(String),
    #[error("run {run} is {status}: {action} needs {expected}")]
    WrongStatus {
        run: String,
        status: String,
        action: &'static str,
        expected: &'static str,
    },
    #[error("invalid input for workflow `{workflow}`: {message}")]
    InvalidInput { workflow: String, message: String },
    #[error(
        "{workflow}: subject {subject} already has {active} active run(s), the limit is {limit}"
    )]
    SubjectLimit {
        workflow: String,
        subject: String,
        active: i64,
        limit: i64,
    },
    #[error("callback {provider}/{external_id} is already bound to run {bound_to}")]
    CallbackTaken {
        provider: String,
        external_id: String,
        bound_to: String,
    },
    #[error("configuration: {0}")]
    Config(String),
    /// The transaction that carried this write together with others failed (or was dropped);
    /// whether it committed is not known: the seq guard makes a retry safe.
    #[error("group commit failed: {0}")]
    GroupCommit(String),
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => EngineError::NoConnection,
            e => EngineError::Database(e),
        }
    }
}

impl EngineError {
    pub(crate) fn queue(backend: &'static str, e: impl std::fmt::Display) -> Self {
        EngineError::Queue {
            backend,
            message: e.to_string(),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
