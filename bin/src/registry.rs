//! Every workflow this binary runs.

use aisha_engine::EngineBuilder;
use aisha_fal::apps::FalApps;
use aisha_fal::jobs::FalJobs;
use aisha_fal::probe::{self, ProbeDeps};
use aisha_workflows::product::Product;
use aisha_workflows::{avatar, portrait, upscale};

/// What the workflows are given.
pub struct Deps {
    pub fal: FalJobs,
    pub apps: FalApps,
    pub product: Product,
}

pub fn register(b: EngineBuilder, deps: Deps) -> EngineBuilder {
    b.register(aisha_engine::testkit::noop3::workflow())
        .register(probe::workflow(ProbeDeps {
            jobs: deps.fal,
            generator: deps.apps.generator,
            http: reqwest::Client::new(),
        }))
        .register(avatar::workflow(deps.product.clone()))
        .register(portrait::workflow(deps.product.clone()))
        .register(upscale::workflow(deps.product))
}
