//! The FAL queue client against the simulator over HTTP: submit, status, result, cancel,
//! retries on 429/503, permanent 422, and real outputs (a LoRA, images of the asked size).

use std::time::Duration;

use aisha_fal::apps::{
    FluxLoraInput, FluxLoraOutput, ImageSize, LoraWeight, OutputFormat, PortraitTrainerInput,
    SizePreset, TrainingOutput,
};
use aisha_fal::client::{CancelOutcome, FalClient, FalKey, HttpRetry, QueueStatus};
use aisha_http::HttpServer;
use aisha_sim::fal::{Fault, SimConfig, SimFal};
use salvo::prelude::*;

const KEY: &str = "sim-key-0123";

async fn sim(delay_ms: u64) -> SimFal {
    SimFal::start(SimConfig {
        key: Some(KEY.into()),
        delay: Duration::from_millis(delay_ms),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn client(sim: &SimFal, key: &str) -> FalClient {
    FalClient::new(&sim.base_url, FalKey::new(key), Duration::from_secs(10))
        .unwrap()
        .with_retry(HttpRetry {
            attempts: 4,
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
        })
}

fn generation(prompt: &str) -> FluxLoraInput {
    FluxLoraInput {
        prompt: prompt.into(),
        loras: vec![],
        image_size: Some(ImageSize::Preset(SizePreset::Portrait4x3)),
        num_images: Some(2),
        seed: Some(7),
        num_inference_steps: None,
        guidance_scale: None,
        enable_safety_checker: None,
        output_format: Some(OutputFormat::Png),
    }
}

async fn until_done(c: &FalClient, app: &str, status_url: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..200 {
        let s = c.status(app, status_url).await.unwrap();
        let name = match &s {
            QueueStatus::InQueue { .. } => "IN_QUEUE",
            QueueStatus::InProgress { .. } => "IN_PROGRESS",
            QueueStatus::Completed { .. } => "COMPLETED",
        };
        if seen.last().map(String::as_str) != Some(name) {
            seen.push(name.to_string());
        }
        if name == "COMPLETED" {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never completed: {seen:?}");
}

#[tokio::test]
async fn submit_status_result_with_follow_up_urls_as_returned() {
    let sim = sim(300).await;
    let c = client(&sim, KEY);
    let app = "fal-ai/flux-lora";
    let s = c
        .submit(
            app,
            &generation("a portrait"),
            "http://127.0.0.1:9/hook?x=1",
        )
        .await
        .unwrap();
    assert!(s.status_url.ends_with(&format!(
        "/fal-ai/flux-lora/requests/{}/status",
        s.request_id
    )));
    let seen = until_done(&c, app, &s.status_url).await;
    assert_eq!(
        seen.first().map(String::as_str),
        Some("IN_QUEUE"),
        "{seen:?}"
    );
    assert!(seen.contains(&"IN_PROGRESS".to_string()), "{seen:?}");
    let out: FluxLoraOutput = c.result(app, &s.response_url).await.unwrap();
    assert_eq!(out.images.len(), 2);
    assert_eq!(out.has_nsfw_concepts, vec![false, false]);
    let bytes = reqwest::get(&out.images[0].url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (768, 1024));
    assert_eq!(out.images[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(
        c.cancel(app, &s.cancel_url).await.unwrap(),
        CancelOutcome::AlreadyCompleted
    );
    sim.stop().await;
}

#[tokio::test]
async fn sub_path_endpoints_are_followed_up_at_owner_and_app() {
    let sim = sim(50).await;
    let c = client(&sim, KEY);
    let s = c
        .submit(
            "fal-ai/flux-lora/v2",
            &generation("x"),
            "http://127.0.0.1:9/h",
        )
        .await
        .unwrap();
    assert!(
        s.status_url.contains("/fal-ai/flux-lora/requests/"),
        "{}",
        s.status_url
    );
    assert!(!s.status_url.contains("/v2/"));
    until_done(&c, "fal-ai/flux-lora/v2", &s.status_url).await;
    sim.stop().await;
}

#[tokio::test]
async fn cancel_in_flight_and_unknown() {
    let sim = sim(2_000).await;
    let c = client(&sim, KEY);
    let s = c
        .submit("fal-ai/flux-lora", &generation("x"), "http://127.0.0.1:9/h")
        .await
        .unwrap();
    assert_eq!(
        c.cancel("fal-ai/flux-lora", &s.cancel_url).await.unwrap(),
        CancelOutcome::CancellationRequested
    );
    let unknown = s.cancel_url.replace(&s.request_id, "no-such-request");
    assert_eq!(
        c.cancel("fal-ai/flux-lora", &unknown).await.unwrap(),
        CancelOutcome::NotFound
    );
    sim.stop().await;
}

#[tokio::test]
async fn transient_answers_are_retried_and_validation_is_permanent() {
    let sim = sim(50).await;
    let c = client(&sim, KEY);
    sim.push_faults([vec![Fault::Submit503], vec![Fault::Submit429]]);
    let s = c
        .submit("fal-ai/flux-lora", &generation("x"), "http://127.0.0.1:9/h")
        .await
        .unwrap();
    assert!(!s.request_id.is_empty());
    assert_eq!(sim.submits(), 1, "the two failed attempts created nothing");

    // Four 503s in a row exhaust the client's four attempts: retryable for the step.
    sim.push_faults((0..4).map(|_| vec![Fault::Submit503]));
    let e = c
        .submit("fal-ai/flux-lora", &generation("x"), "http://127.0.0.1:9/h")
        .await
        .unwrap_err();
    assert!(e.is_transient() && !e.is_permanent(), "{e}");
    assert!(e.to_string().contains("runner_scheduling_failure"), "{e}");

    let mut no_prompt = generation("");
    no_prompt.prompt.clear();
    let e = c
        .submit("fal-ai/flux-lora", &no_prompt, "http://127.0.0.1:9/h")
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string().contains("422") && e.to_string().contains("body.prompt"),
        "{e}"
    );
    assert_eq!(sim.submits(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_permanent_and_never_printed() {
    let sim = sim(50).await;
    let c = client(&sim, "wrong-key-secret");
    let e = c
        .submit("fal-ai/flux-lora", &generation("x"), "http://127.0.0.1:9/h")
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("401"), "{e}");
    assert!(
        !e.to_string().contains("wrong-key-secret")
            && !format!("{e:?}").contains("wrong-key-secret")
    );
    sim.stop().await;
}

#[tokio::test]
async fn training_makes_a_lora_that_generation_uses() {
    let sim = sim(100).await;
    let c = client(&sim, KEY);
    let (files, zip_url) = serve_bytes(aisha_sim::photos::training_zip(3)).await;
    let trainer = "fal-ai/flux-lora-portrait-trainer";
    let input = PortraitTrainerInput {
        images_data_url: zip_url,
        trigger_phrase: Some("ohwx person".into()),
        steps: Some(1000),
        learning_rate: Some(0.00009),
        multiresolution_training: Some(true),
        subject_crop: Some(true),
        create_masks: None,
        data_archive_format: None,
        resume_from_checkpoint: None,
    };
    let s = c
        .submit(trainer, &input, "http://127.0.0.1:9/h")
        .await
        .unwrap();
    until_done(&c, trainer, &s.status_url).await;
    let out: TrainingOutput = c.result(trainer, &s.response_url).await.unwrap();
    let lora = reqwest::get(&out.diffusers_lora_file.url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(out.diffusers_lora_file.file_size, Some(lora.len() as u64));
    let n = u64::from_le_bytes(lora[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&lora[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"]["trigger"], "ohwx person");
    assert_eq!(header["__metadata__"]["photos"], "3");

    let mut gen_input = generation("ohwx person as an astronaut");
    gen_input.loras = vec![LoraWeight {
        path: out.diffusers_lora_file.url.clone(),
        scale: 1.0,
    }];
    gen_input.image_size = Some(ImageSize::Custom {
        width: 320,
        height: 480,
    });
    gen_input.output_format = Some(OutputFormat::Jpeg);
    let s = c
        .submit("fal-ai/flux-lora", &gen_input, "http://127.0.0.1:9/h")
        .await
        .unwrap();
    until_done(&c, "fal-ai/flux-lora", &s.status_url).await;
    let out: FluxLoraOutput = c.result("fal-ai/flux-lora", &s.response_url).await.unwrap();
    let bytes = reqwest::get(&out.images[1].url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (320, 480));

    // A zip that is not one fails the job, as FAL would.
    let (bad, bad_url) = serve_bytes(b"not a zip".to_vec()).await;
    let s = c
        .submit(
            trainer,
            &PortraitTrainerInput {
                images_data_url: bad_url,
                ..input
            },
            "http://127.0.0.1:9/h",
        )
        .await
        .unwrap();
    until_done(&c, trainer, &s.status_url).await;
    match c.status(trainer, &s.status_url).await.unwrap() {
        QueueStatus::Completed { error: Some(e), .. } => assert!(e.contains("not a zip"), "{e}"),
        other => panic!("expected a failed job, got {other:?}"),
    }
    files.stop().await;
    bad.stop().await;
    sim.stop().await;
}

#[handler]
async fn serve_zip(depot: &mut Depot, res: &mut Response) {
    let bytes = depot.get_typed::<Vec<u8>>().cloned().unwrap_or_default();
    res.add_header("content-type", "application/zip", true)
        .unwrap();
    res.body(bytes);
}

/// Serves `bytes` at `/data.zip` (what FAL downloads a training zip from); the server and the URL.
async fn serve_bytes(bytes: Vec<u8>) -> (HttpServer, String) {
    let router = Router::new()
        .hoop(salvo::affix_state::inject(bytes))
        .push(Router::with_path("data.zip").get(serve_zip));
    let server = HttpServer::start("127.0.0.1:0", router).await.unwrap();
    let url = format!("http://{}/data.zip", server.addr);
    (server, url)
}

#[tokio::test]
async fn status_with_logs_shows_the_queue_moving_and_the_progress_growing() {
    let sim = sim(1500).await;
    let c = client(&sim, KEY);
    let app = "fal-ai/flux-lora";
    let first = c
        .submit(app, &generation("first"), "http://127.0.0.1:9/hook")
        .await
        .unwrap();
    let second = c
        .submit(app, &generation("second"), "http://127.0.0.1:9/hook")
        .await
        .unwrap();
    // Both queued (a job waits a third of its delay): the second has the first ahead of it.
    match c.status(app, &second.status_url).await.unwrap() {
        QueueStatus::InQueue { queue_position } => assert_eq!(queue_position, Some(1)),
        other => panic!("expected IN_QUEUE, got {other:?}"),
    }
    match c.status(app, &first.status_url).await.unwrap() {
        QueueStatus::InQueue { queue_position } => assert_eq!(queue_position, Some(0)),
        other => panic!("expected IN_QUEUE, got {other:?}"),
    }
    let mut seen = Vec::new();
    for _ in 0..300 {
        let s = c.status(app, &first.status_url).await.unwrap();
        if let Some(p) = s.progress()
            && seen.last() != Some(&p)
        {
            seen.push(p);
        }
        if matches!(s, QueueStatus::Completed { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.last(), Some(&1.0), "{seen:?}");
    assert!(seen.len() >= 4, "progress moved in steps: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "never backwards: {seen:?}"
    );
    sim.stop().await;
}
