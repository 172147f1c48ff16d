//! The simulator's HTTP routes: FAL's queue API, its JWKS, the files it made, and controls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use salvo::http::StatusCode;
use salvo::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::deliver::deliver;
use super::render;
use super::signing::jwks_document;
use super::{AppKind, Fault, RequestInfo, Shared, SimFile, SimRequest, progress, upscale};
use aisha_fal::apps::{
    FastTrainingInput, FluxLoraInput, FluxLoraOutput, Image, ImageSize, OutputFormat,
    PortraitTrainerInput, SizePreset,
};
use aisha_fal::callback::{CallbackBody, CallbackStatus};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let requests = Router::with_path("{owner}/{app}/requests/{id}")
        .get(job_result)
        .push(Router::with_path("status").get(job_status))
        .push(Router::with_path("cancel").put(cancel_job));
    Router::new()
        .hoop(salvo::affix_state::inject(shared))
        .push(Router::with_path(".well-known/jwks.json").get(serve_jwks))
        .push(Router::with_path("files/{id}/{name}").get(serve_file))
        .push(Router::with_path("_sim/faults").post(queue_faults))
        .push(Router::with_path("_sim/requests").get(list_requests))
        .push(requests)
        .push(Router::with_path("{owner}/{app}").post(submit_job))
        .push(Router::with_path("{owner}/{app}/{**rest}").post(submit_job))
}

fn shared(depot: &Depot) -> Option<Arc<Shared>> {
    depot.get_typed::<Arc<Shared>>().ok().cloned()
}

fn answer(res: &mut Response, status: StatusCode, body: Value) {
    res.status_code(status);
    res.render(Json(body));
}

pub(super) fn missing(field: &str) -> Value {
    json!({"detail": [{"loc": ["body", field], "msg": "field required", "type": "value_error.missing"}]})
}

pub(super) fn invalid(msg: String) -> Value {
    json!({"detail": [{"loc": ["body"], "msg": msg, "type": "value_error"}]})
}

async fn slow_if(faults: &[Fault], s: &Shared) {
    if faults.contains(&Fault::Slow) {
        tokio::time::sleep(Duration::from_millis(s.config.faults.slow_ms.max(1))).await;
    }
}

fn authorised(req: &Request, s: &Shared) -> bool {
    let Some(given) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Key "))
    else {
        return false;
    };
    match &s.config.key {
        Some(k) => k == given,
        None => !given.is_empty(),
    }
}

/// Checks an app's input against its schema; the error is FAL's 422 body.
fn validate(kind: AppKind, input: &Value) -> Result<(), Value> {
    let has = |f: &str| input.get(f).is_some_and(|v| !v.is_null() && v != "");
    match kind {
        AppKind::PortraitTrainer | AppKind::FastTrainer if !has("images_data_url") => {
            Err(missing("images_data_url"))
        }
        AppKind::PortraitTrainer => serde_json::from_value::<PortraitTrainerInput>(input.clone())
            .map(drop)
            .map_err(|e| invalid(e.to_string())),
        AppKind::FastTrainer => serde_json::from_value::<FastTrainingInput>(input.clone())
            .map(drop)
            .map_err(|e| invalid(e.to_string())),
        AppKind::Generator if !has("prompt") => Err(missing("prompt")),
        AppKind::Generator => {
            let i: FluxLoraInput =
                serde_json::from_value(input.clone()).map_err(|e| invalid(e.to_string()))?;
            match i.num_images {
                Some(n) if !(1..=4).contains(&n) => Err(
                    json!({"detail": [{"loc": ["body", "num_images"], "msg": "ensure this value is between 1 and 4", "type": "value_error.number"}]}),
                ),
                _ => Ok(()),
            }
        }
        AppKind::Upscaler => upscale::validate(input),
    }
}

#[handler]
async fn submit_job(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    if !authorised(req, &s) {
        return answer(res, StatusCode::UNAUTHORIZED, unauthorised());
    }
    let owner = req.param::<String>("owner").unwrap_or_default();
    let app_name = req.param::<String>("app").unwrap_or_default();
    let app = format!("{owner}/{app_name}");
    let Some(kind) = AppKind::of(&app) else {
        return answer(
            res,
            StatusCode::NOT_FOUND,
            json!({"detail": format!("Application '{app}' not found")}),
        );
    };
    let mut faults = req
        .headers()
        .get("x-sim-fault")
        .and_then(|v| v.to_str().ok())
        .map(Fault::parse_list)
        .unwrap_or_default();
    let webhook = req.query::<String>("fal_webhook");
    {
        let mut st = s.state();
        if let Some(next) = st.next_faults.pop_front() {
            faults.extend(next);
        }
    }
    faults.extend(s.config.faults.draw());
    slow_if(&faults, &s).await;
    if faults.contains(&Fault::Submit503) {
        res.add_header("x-fal-error-type", "runner_scheduling_failure", true)
            .ok();
        return answer(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"detail": "No runner available", "error_type": "runner_scheduling_failure"}),
        );
    }
    if faults.contains(&Fault::Submit429) {
        return answer(
            res,
            StatusCode::TOO_MANY_REQUESTS,
            json!({"detail": "Too many requests"}),
        );
    }
    let input: Value = match req.parse_json_with_max_size(1 << 20).await {
        Ok(v) => v,
        Err(e) => {
            return answer(
                res,
                StatusCode::UNPROCESSABLE_ENTITY,
                invalid(format!("body is not JSON: {e}")),
            );
        }
    };
    if let Err(detail) = validate(kind, &input) {
        return answer(res, StatusCode::UNPROCESSABLE_ENTITY, detail);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let base = format!("{}/{app}/requests/{id}", s.base_url);
    {
        let mut st = s.state();
        st.submits += 1;
        st.requests.insert(
            id.clone(),
            SimRequest {
                app: app.clone(),
                kind,
                input,
                submitted: Instant::now(),
                delay: s.config.delay,
                faults,
                webhook,
                cancelled: false,
                outcome: None,
                callbacks_sent: 0,
            },
        );
    }
    tokio::spawn(run_job(s.clone(), id.clone()));
    answer(
        res,
        StatusCode::OK,
        json!({
            "request_id": id,
            "response_url": base,
            "status_url": format!("{base}/status"),
            "cancel_url": format!("{base}/cancel"),
            "queue_position": 0,
        }),
    );
}

/// Waits the job's delay, makes its output, then calls back (unless told not to).
async fn run_job(s: Arc<Shared>, id: String) {
    let Some(job) = s.state().requests.get(&id).cloned() else {
        return;
    };
    tokio::time::sleep(job.delay).await;
    let cancelled = s.state().requests.get(&id).is_some_and(|r| r.cancelled);
    let outcome = if cancelled {
        Err("Request was cancelled".to_string())
    } else if job.faults.contains(&Fault::Error) {
        Err("Internal error: the simulated runner failed (fault injected)".to_string())
    } else {
        produce(&s, &id, &job).await
    };
    if let Some(r) = s.state().requests.get_mut(&id) {
        r.outcome = Some(outcome.clone());
    }
    let Some(url) = job
        .webhook
        .filter(|_| !job.faults.contains(&Fault::NoCallback))
    else {
        return;
    };
    if job.faults.contains(&Fault::Late) {
        tokio::time::sleep(Duration::from_millis(s.config.faults.late_ms.max(1))).await;
    }
    let (status, payload, error) = match outcome {
        Ok(p) => (CallbackStatus::Ok, Some(p), None),
        Err(e) => (CallbackStatus::Error, None, Some(e)),
    };
    let body = CallbackBody {
        request_id: id.clone(),
        gateway_request_id: Some(id.clone()),
        status,
        payload,
        error,
        payload_error: None,
    };
    let Ok(bytes) = serde_json::to_vec(&body) else {
        return;
    };
    let times = if job.faults.contains(&Fault::Duplicate) {
        2
    } else {
        1
    };
    for _ in 0..times {
        if deliver(&s, &url, &id, &bytes).await
            && let Some(r) = s.state().requests.get_mut(&id)
        {
            r.callbacks_sent += 1;
        }
    }
}

pub(super) fn add_file(
    s: &Shared,
    id: &str,
    name: &str,
    content_type: &'static str,
    bytes: Vec<u8>,
) -> Value {
    let size = bytes.len();
    let url = format!("{}/files/{id}/{name}", s.base_url);
    s.state().files.insert(
        format!("{id}/{name}"),
        SimFile {
            content_type,
            bytes: Arc::new(bytes),
        },
    );
    json!({"url": url, "content_type": content_type, "file_name": name, "file_size": size})
}

async fn produce(s: &Arc<Shared>, id: &str, job: &SimRequest) -> Result<Value, String> {
    match job.kind {
        AppKind::PortraitTrainer | AppKind::FastTrainer => train(s, id, job).await,
        AppKind::Generator => generate(s, id, job).await,
        AppKind::Upscaler => upscale::run(s, id, job).await,
    }
}

async fn train(s: &Arc<Shared>, id: &str, job: &SimRequest) -> Result<Value, String> {
    let field = |f: &str| {
        job.input
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let url = field("images_data_url");
    let trigger = match job.kind {
        AppKind::FastTrainer => field("trigger_word"),
        _ => field("trigger_phrase"),
    };
    let steps = job
        .input
        .get("steps")
        .and_then(Value::as_u64)
        .unwrap_or(2500);
    let zip = fetch(s, &url, "images_data_url").await?;
    let photos = tokio::task::spawn_blocking(move || render::training_photos(&zip))
        .await
        .map_err(|e| e.to_string())??;
    let lora = render::lora_file(&trigger, photos.len(), steps);
    // Generation finds the photos again by the LoRA's content, wherever the file was copied.
    let lora_id = hex::encode(Sha256::digest(&lora));
    let lora_file = add_file(
        s,
        id,
        "pytorch_lora_weights.safetensors",
        "application/octet-stream",
        lora,
    );
    let config =
        json!({"trigger": trigger, "steps": steps, "photos": photos.len(), "app": job.app});
    let config_file = add_file(
        s,
        id,
        "config.json",
        "application/json",
        config.to_string().into_bytes(),
    );
    s.state().lora_photos.insert(lora_id, Arc::new(photos));
    Ok(json!({"diffusers_lora_file": lora_file, "config_file": config_file}))
}

/// Downloads an input file as FAL would (its URL may be presigned: never printed).
pub(super) async fn fetch(s: &Shared, url: &str, what: &str) -> Result<bytes::Bytes, String> {
    let resp = s
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot download {what}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!(
            "cannot download {what}: HTTP {}",
            resp.status().as_u16()
        ));
    }
    resp.bytes()
        .await
        .map_err(|e| format!("cannot download {what}: {}", e.without_url()))
}

async fn generate(s: &Arc<Shared>, id: &str, job: &SimRequest) -> Result<Value, String> {
    let input: FluxLoraInput =
        serde_json::from_value(job.input.clone()).map_err(|e| e.to_string())?;
    let photos = match input.loras.first() {
        Some(l) => {
            let lora = fetch(s, &l.path, "LoRA").await?;
            let id = hex::encode(Sha256::digest(&lora));
            s.state().lora_photos.get(&id).cloned()
        }
        None => None,
    };
    let (width, height) = input
        .image_size
        .unwrap_or(ImageSize::Preset(SizePreset::Landscape4x3))
        .dimensions();
    let seed = input.seed.unwrap_or_else(|| rand::random::<u32>() as u64);
    let format = input.output_format.unwrap_or(OutputFormat::Jpeg);
    let n = input.num_images.unwrap_or(1);
    let prompt = input.prompt.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|i| {
                let img = render::portrait(
                    photos.as_deref().map(|v| v.as_slice()),
                    width,
                    height,
                    seed,
                    i,
                    &prompt,
                );
                render::encode(&img, format)
            })
            .collect::<Result<Vec<_>, String>>()
    })
    .await
    .map_err(|e| e.to_string())??;
    let ext = match format {
        OutputFormat::Jpeg => "jpg",
        OutputFormat::Png => "png",
    };
    let images = rendered
        .into_iter()
        .enumerate()
        .map(|(i, (bytes, ct))| {
            let f = add_file(s, id, &format!("image_{i}.{ext}"), ct, bytes);
            Image {
                url: f["url"].as_str().unwrap_or_default().to_string(),
                width: Some(width),
                height: Some(height),
                content_type: Some(ct.to_string()),
                file_name: f["file_name"].as_str().map(str::to_string),
                file_size: f["file_size"].as_u64(),
            }
        })
        .collect::<Vec<_>>();
    let nsfw = job.faults.contains(&Fault::Nsfw);
    let out = FluxLoraOutput {
        has_nsfw_concepts: (0..images.len()).map(|i| nsfw && i == 0).collect(),
        images,
        seed: Some(seed),
        prompt: Some(input.prompt),
        timings: Some(json!({"inference": job.delay.as_secs_f64()})),
    };
    serde_json::to_value(out).map_err(|e| e.to_string())
}

/// The request a status or result call is about; answers 401 or 404 itself when there is none.
async fn known_request(req: &Request, s: &Shared, res: &mut Response) -> Option<SimRequest> {
    if !authorised(req, s) {
        answer(res, StatusCode::UNAUTHORIZED, unauthorised());
        return None;
    }
    let id = req.param::<String>("id").unwrap_or_default();
    let Some(r) = s.state().requests.get(&id).cloned() else {
        answer(
            res,
            StatusCode::NOT_FOUND,
            json!({"detail": "Request not found"}),
        );
        return None;
    };
    slow_if(&r.faults, s).await;
    Some(r)
}

fn unauthorised() -> Value {
    json!({"detail": "Missing or invalid authorization header"})
}

#[handler]
async fn job_status(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let Some(r) = known_request(req, &s, res).await else {
        return;
    };
    // FAL sends the log only to `?logs=1`, and `"logs": null` otherwise (clients read the key).
    let with_logs = req.query::<String>("logs").as_deref() == Some("1");
    let logs = |lines: Vec<Value>| {
        if with_logs {
            Value::Array(lines)
        } else {
            Value::Null
        }
    };
    let now = std::time::Instant::now();
    let body = match &r.outcome {
        Some(Ok(_)) => json!({
            "status": "COMPLETED",
            "logs": logs(progress::logs(r.kind, 1.0)),
            "metrics": {"inference_time": r.delay.as_secs_f64()},
        }),
        Some(Err(e)) => json!({
            "status": "COMPLETED",
            "logs": logs(progress::logs(r.kind, 0.0)),
            "error": e,
            "error_type": "internal_error",
        }),
        None => match progress::phase(&r, now) {
            progress::Phase::Queued => {
                let ahead = progress::queue_position(&r, s.state().requests.values(), now);
                json!({"status": "IN_QUEUE", "queue_position": ahead})
            }
            progress::Phase::Running(done) => {
                json!({"status": "IN_PROGRESS", "logs": logs(progress::logs(r.kind, done))})
            }
        },
    };
    answer(res, StatusCode::OK, body);
}

#[handler]
async fn job_result(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let Some(r) = known_request(req, &s, res).await else {
        return;
    };
    match r.outcome {
        Some(Ok(payload)) => answer(res, StatusCode::OK, payload),
        Some(Err(e)) => answer(
            res,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"detail": e, "error_type": "internal_error"}),
        ),
        None => answer(
            res,
            StatusCode::BAD_REQUEST,
            json!({"detail": "Request is still in progress"}),
        ),
    }
}

#[handler]
async fn cancel_job(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    if !authorised(req, &s) {
        return answer(res, StatusCode::UNAUTHORIZED, unauthorised());
    }
    let id = req.param::<String>("id").unwrap_or_default();
    let mut st = s.state();
    match st.requests.get_mut(&id) {
        None => answer(res, StatusCode::NOT_FOUND, json!({"status": "NOT_FOUND"})),
        Some(r) if r.outcome.is_some() => answer(
            res,
            StatusCode::BAD_REQUEST,
            json!({"status": "ALREADY_COMPLETED"}),
        ),
        Some(r) => {
            r.cancelled = true;
            answer(
                res,
                StatusCode::ACCEPTED,
                json!({"status": "CANCELLATION_REQUESTED"}),
            );
        }
    }
}

#[handler]
async fn serve_jwks(depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let doc = jwks_document(&s.signers());
    answer(res, StatusCode::OK, doc);
}

#[handler]
async fn serve_file(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    let key = format!(
        "{}/{}",
        req.param::<String>("id").unwrap_or_default(),
        req.param::<String>("name").unwrap_or_default()
    );
    let found = s.state().files.get(&key).cloned();
    match found {
        Some(f) => {
            res.add_header("content-type", f.content_type, true).ok();
            res.body(f.bytes.as_ref().clone());
        }
        None => answer(
            res,
            StatusCode::NOT_FOUND,
            json!({"detail": "File not found"}),
        ),
    }
}

/// `POST /_sim/faults` with `{"next": [["submit-503"], ["error", "duplicate"]]}`.
#[handler]
async fn queue_faults(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    #[derive(serde::Deserialize)]
    struct Body {
        next: Vec<Vec<Fault>>,
    }
    match req.parse_json::<Body>().await {
        Ok(b) => {
            let n = b.next.len();
            s.state().next_faults.extend(b.next);
            answer(res, StatusCode::OK, json!({"queued": n}));
        }
        Err(e) => answer(
            res,
            StatusCode::BAD_REQUEST,
            json!({"detail": e.to_string()}),
        ),
    }
}

pub(crate) fn request_infos(s: &Shared) -> Vec<RequestInfo> {
    let st = s.state();
    let mut out: Vec<RequestInfo> = st
        .requests
        .iter()
        .map(|(id, r)| RequestInfo {
            request_id: id.clone(),
            app: r.app.clone(),
            done: r.outcome.is_some(),
            cancelled: r.cancelled,
            callbacks_sent: r.callbacks_sent,
        })
        .collect();
    out.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    out
}

#[handler]
async fn list_requests(depot: &mut Depot, res: &mut Response) {
    let Some(s) = shared(depot) else { return };
    answer(res, StatusCode::OK, json!(request_infos(&s)));
}
