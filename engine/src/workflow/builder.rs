use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context::{FailureCtx, PollCtx, ProgressCtx, StepCtx};
use super::step::{Next, PollOutcome, StepError, StepResult};
use crate::retry_policy::RetryPolicy;

/// What happens when a subject already has as many active runs as its limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitMode {
    /// The start is refused with a clear reason.
    Refuse,
    /// The run is created but held (no task, no worker slot) until a slot frees up.
    Queue,
}

type StepFn<S, D> = Arc<dyn Fn(S, StepCtx<D>) -> BoxFuture<'static, StepResult<S>> + Send + Sync>;
type FailFn<S, D> =
    Arc<dyn Fn(S, FailureCtx<D>) -> BoxFuture<'static, Result<(), StepError>> + Send + Sync>;
type PollFn<S, D> = Arc<dyn Fn(S, PollCtx<D>) -> BoxFuture<'static, PollOutcome> + Send + Sync>;
type AskFn<S, D> =
    Arc<dyn Fn(S, ProgressCtx<D>) -> BoxFuture<'static, Option<Value>> + Send + Sync>;
type TellFn<S, D> = Arc<dyn Fn(S, Value, ProgressCtx<D>) -> BoxFuture<'static, ()> + Send + Sync>;

struct StepDef<S, D> {
    name: &'static str,
    policy: RetryPolicy,
    permit: Option<String>,
    run: StepFn<S, D>,
}

/// A workflow: named steps over a typed state `S`, with dependencies `D` shared by every step.
pub struct Workflow<S, D> {
    name: &'static str,
    deps: Arc<D>,
    default_policy: RetryPolicy,
    steps: Vec<StepDef<S, D>>,
    index: HashMap<&'static str, usize>,
    compensate: Option<FailFn<S, D>>,
    compensate_policy: RetryPolicy,
    poll: Option<PollFn<S, D>>,
    progress: Option<(AskFn<S, D>, TellFn<S, D>)>,
    subject_limit: Option<(i64, LimitMode)>,
}

impl<S, D> Workflow<S, D>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    D: Send + Sync + 'static,
{
    pub fn new(name: &'static str, deps: D) -> Self {
        Workflow {
            name,
            deps: Arc::new(deps),
            default_policy: RetryPolicy::default(),
            steps: Vec::new(),
            index: HashMap::new(),
            compensate: None,
            compensate_policy: RetryPolicy::default().attempts(10),
            poll: None,
            progress: None,
            subject_limit: None,
        }
    }

    /// The policy of steps added after this call without one of their own.
    pub fn default_policy(mut self, policy: RetryPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// Adds a step; the first one added is where runs start.
    pub fn step<F, Fut>(self, name: &'static str, f: F) -> Self
    where
        F: Fn(S, StepCtx<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult<S>> + Send + 'static,
    {
        let policy = self.default_policy.clone();
        self.add(name, policy, None, f)
    }

    pub fn step_with<F, Fut>(self, name: &'static str, policy: RetryPolicy, f: F) -> Self
    where
        F: Fn(S, StepCtx<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult<S>> + Send + 'static,
    {
        self.add(name, policy, None, f)
    }

    /// A step that calls `provider` and keeps one of its permits until the run's wait is
    /// resolved (or the run ends): at most the provider's capacity of such runs are in flight,
    /// the others are held without a worker slot.
    pub fn step_with_permit<F, Fut>(
        self,
        name: &'static str,
        provider: &str,
        policy: RetryPolicy,
        f: F,
    ) -> Self
    where
        F: Fn(S, StepCtx<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult<S>> + Send + 'static,
    {
        self.add(name, policy, Some(provider.to_string()), f)
    }

    fn add<F, Fut>(
        mut self,
        name: &'static str,
        policy: RetryPolicy,
        permit: Option<String>,
        f: F,
    ) -> Self
    where
        F: Fn(S, StepCtx<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StepResult<S>> + Send + 'static,
    {
        assert!(
            !self.index.contains_key(name) && !name.starts_with('$'),
            "workflow {}: step name `{name}` is taken or reserved",
            self.name
        );
        self.index.insert(name, self.steps.len());
        self.steps.push(StepDef {
            name,
            policy,
            permit,
            run: Arc::new(move |s, ctx| f(s, ctx).boxed()),
        });
        self
    }

    /// Compensation: runs once a run has failed for good or was cancelled (durably, retried).
    pub fn on_failure<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(S, FailureCtx<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), StepError>> + Send + 'static,
    {
        self.compensate = Some(Arc::new(move |s, ctx| f(s, ctx).boxed()));
        self
    }

    /// Asked when a parked run's poll time or deadline comes.
    pub fn on_poll<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(S, PollCtx<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = PollOutcome> + Send + 'static,
    {
        self.poll = Some(Arc::new(move |s, ctx| f(s, ctx).boxed()));
        self
    }

    /// While a run is parked on a wait declared with [`crate::Wait::progress_every`], `ask` is
    /// called at that interval (with the wait's external id in the context); a progress it
    /// returns is recorded on the run (`progress` in `admin runs show`) and, if it changed
    /// and the run is still parked on the same wait, handed to `tell` with the run's state. Neither can resolve or
    /// fail the wait.
    pub fn on_progress<P, A, AFut, T, TFut>(mut self, ask: A, tell: T) -> Self
    where
        P: Serialize + DeserializeOwned + Send + 'static,
        A: Fn(S, ProgressCtx<D>) -> AFut + Send + Sync + 'static,
        AFut: Future<Output = Option<P>> + Send + 'static,
        T: Fn(S, P, ProgressCtx<D>) -> TFut + Send + Sync + 'static,
        TFut: Future<Output = ()> + Send + 'static,
    {
        let ask: AskFn<S, D> = Arc::new(move |s, ctx| {
            let fut = ask(s, ctx);
            async move { fut.await.and_then(|p| serde_json::to_value(p).ok()) }.boxed()
        });
        let tell: TellFn<S, D> = Arc::new(move |s, v, ctx| match serde_json::from_value::<P>(v) {
            Ok(p) => tell(s, p, ctx).boxed(),
            Err(_) => async {}.boxed(),
        });
        self.progress = Some((ask, tell));
        self
    }

    /// At most `n` active runs per subject; what happens to the next start is `mode`.
    pub fn limit_per_subject(mut self, n: i64, mode: LimitMode) -> Self {
        self.subject_limit = Some((n.max(1), mode));
        self
    }

    fn decode(&self, state: Value) -> Result<S, StepError> {
        serde_json::from_value(state)
            .map_err(|e| StepError::permanent(format!("state does not decode: {e}")))
    }
}

/// A step's outcome with the state serialised: what the engine stores.
#[derive(Debug)]
pub(crate) enum ErasedNext {
    Goto {
        step: String,
        state: Value,
    },
    Wait {
        provider: String,
        external_id: String,
        then: String,
        state: Value,
        deadline_ms: i64,
        poll_every_ms: i64,
        /// None: no progress hook for this wait.
        progress_every_ms: Option<i64>,
    },
    Done {
        state: Value,
    },
}

pub(crate) struct StepInfo {
    pub run_id: String,
    pub step: String,
    pub attempt: i64,
    pub subject: Option<String>,
    pub parent_run_id: Option<String>,
    pub callback: Option<Value>,
}

pub(crate) struct FailureInfo {
    pub run_id: String,
    pub subject: Option<String>,
    pub failed_step: String,
    pub error: String,
    pub cancelled: bool,
    pub attempt: i64,
}

pub(crate) struct PollInfo {
    pub run_id: String,
    pub subject: Option<String>,
    pub provider: String,
    pub external_id: String,
    pub deadline_passed: bool,
}

pub(crate) struct ProgressInfo {
    pub run_id: String,
    pub subject: Option<String>,
    pub provider: String,
    pub external_id: String,
}

/// The engine's view of a workflow, with the state type erased.
pub(crate) trait DynWorkflow: Send + Sync {
    fn name(&self) -> &'static str;
    fn first_step(&self) -> Option<&'static str>;
    fn has_step(&self, step: &str) -> bool;
    fn policy(&self, step: &str) -> &RetryPolicy;
    fn permit_for(&self, step: &str) -> Option<&str>;
    fn subject_limit(&self) -> Option<(i64, LimitMode)>;
    fn check_input(&self, input: &Value) -> Result<(), String>;
    fn run_step(
        &self,
        state: Value,
        info: StepInfo,
    ) -> BoxFuture<'static, Result<ErasedNext, StepError>>;
    fn compensate(
        &self,
        state: Value,
        info: FailureInfo,
    ) -> BoxFuture<'static, Result<(), StepError>>;
    fn has_poll(&self) -> bool;
    fn poll(&self, state: Value, info: PollInfo) -> BoxFuture<'static, PollOutcome>;
    fn ask_progress(&self, state: Value, info: ProgressInfo) -> BoxFuture<'static, Option<Value>>;
    fn tell_progress(
        &self,
        state: Value,
        progress: Value,
        info: ProgressInfo,
    ) -> BoxFuture<'static, ()>;
}

fn encode<S: Serialize>(s: &S) -> Result<Value, StepError> {
    serde_json::to_value(s).map_err(|e| StepError::permanent(format!("state does not encode: {e}")))
}

impl<S, D> DynWorkflow for Workflow<S, D>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    D: Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn first_step(&self) -> Option<&'static str> {
        self.steps.first().map(|s| s.name)
    }

    fn has_step(&self, step: &str) -> bool {
        self.index.contains_key(step)
    }

    fn policy(&self, step: &str) -> &RetryPolicy {
        match self.index.get(step) {
            Some(&i) => &self.steps[i].policy,
            None => &self.compensate_policy,
        }
    }

    fn permit_for(&self, step: &str) -> Option<&str> {
        self.index
            .get(step)
            .and_then(|&i| self.steps[i].permit.as_deref())
    }

    fn subject_limit(&self) -> Option<(i64, LimitMode)> {
        self.subject_limit
    }

    fn check_input(&self, input: &Value) -> Result<(), String> {
        serde_json::from_value::<S>(input.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn run_step(
        &self,
        state: Value,
        info: StepInfo,
    ) -> BoxFuture<'static, Result<ErasedNext, StepError>> {
        let Some(&i) = self.index.get(info.step.as_str()) else {
            let msg = format!("workflow {} has no step `{}`", self.name, info.step);
            return async move { Err(StepError::Permanent(msg)) }.boxed();
        };
        let state = match self.decode(state) {
            Ok(s) => s,
            Err(e) => return async move { Err(e) }.boxed(),
        };
        let ctx = StepCtx {
            run_id: info.run_id,
            workflow: self.name.to_string(),
            step: info.step,
            attempt: info.attempt,
            subject: info.subject,
            parent_run_id: info.parent_run_id,
            callback: info.callback,
            deps: self.deps.clone(),
        };
        let fut = (self.steps[i].run)(state, ctx);
        let has_progress = self.progress.is_some();
        async move {
            Ok(match fut.await? {
                Next::Goto(step, s) => ErasedNext::Goto {
                    step: step.to_string(),
                    state: encode(&s)?,
                },
                Next::Done(s) => ErasedNext::Done { state: encode(&s)? },
                Next::Wait(w) => ErasedNext::Wait {
                    provider: w.provider,
                    external_id: w.external_id,
                    then: w.then.to_string(),
                    state: encode(&w.state)?,
                    deadline_ms: crate::time::ms(w.deadline),
                    poll_every_ms: crate::time::ms(w.poll_every).max(1),
                    progress_every_ms: w
                        .progress_every
                        .filter(|_| has_progress)
                        .map(|d| crate::time::ms(d).max(1)),
                },
            })
        }
        .boxed()
    }

    fn compensate(
        &self,
        state: Value,
        info: FailureInfo,
    ) -> BoxFuture<'static, Result<(), StepError>> {
        let Some(f) = self.compensate.clone() else {
            return async { Ok(()) }.boxed();
        };
        let state = match self.decode(state) {
            Ok(s) => s,
            Err(e) => return async move { Err(e) }.boxed(),
        };
        let ctx = FailureCtx {
            run_id: info.run_id,
            workflow: self.name.to_string(),
            subject: info.subject,
            failed_step: info.failed_step,
            error: info.error,
            cancelled: info.cancelled,
            attempt: info.attempt,
            deps: self.deps.clone(),
        };
        f(state, ctx)
    }

    fn has_poll(&self) -> bool {
        self.poll.is_some()
    }

    fn poll(&self, state: Value, info: PollInfo) -> BoxFuture<'static, PollOutcome> {
        let Some(f) = self.poll.clone() else {
            return async { PollOutcome::Pending }.boxed();
        };
        let state = match self.decode(state) {
            Ok(s) => s,
            Err(e) => {
                let msg = e.message().to_string();
                return async move { PollOutcome::Failed(msg) }.boxed();
            }
        };
        let ctx = PollCtx {
            run_id: info.run_id,
            workflow: self.name.to_string(),
            subject: info.subject,
            provider: info.provider,
            external_id: info.external_id,
            deadline_passed: info.deadline_passed,
            deps: self.deps.clone(),
        };
        f(state, ctx)
    }

    fn ask_progress(&self, state: Value, info: ProgressInfo) -> BoxFuture<'static, Option<Value>> {
        let (Some((ask, _)), Ok(state)) = (self.progress.as_ref(), self.decode(state)) else {
            return async { None }.boxed();
        };
        ask(state, self.progress_ctx(info))
    }

    fn tell_progress(
        &self,
        state: Value,
        progress: Value,
        info: ProgressInfo,
    ) -> BoxFuture<'static, ()> {
        let (Some((_, tell)), Ok(state)) = (self.progress.as_ref(), self.decode(state)) else {
            return async {}.boxed();
        };
        tell(state, progress, self.progress_ctx(info))
    }
}

impl<S, D> Workflow<S, D> {
    fn progress_ctx(&self, info: ProgressInfo) -> ProgressCtx<D> {
        ProgressCtx {
            run_id: info.run_id,
            workflow: self.name.to_string(),
            subject: info.subject,
            provider: info.provider,
            external_id: info.external_id,
            deps: self.deps.clone(),
        }
    }
}
