//! Every workflow this binary runs.

use aisha_engine::engine::EngineBuilder;

pub fn register(b: EngineBuilder) -> EngineBuilder {
    b.register(aisha_engine::noop3::workflow())
}
