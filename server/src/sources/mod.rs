//! The sources of the stream that the server itself produces: real host load and a simulated ticker.
//! (The third source, chat, arrives through `POST /api/messages` and WebSocket frames.)

pub mod load;
pub mod ticker;

use std::time::Duration;
use switchboard_shared::EventBody;
use tokio::time::MissedTickBehavior;

use crate::AppState;

/// Starts every source whose interval is not zero; each stops on shutdown.
pub fn spawn(state: &AppState) {
    let config = &state.config;
    if config.load_ms > 0 {
        match load::LoadSampler::new() {
            Ok(mut sampler) => every(state, config.load_ms, move || match sampler.sample() {
                Ok(sample) => Some(EventBody::Load(sample)),
                Err(err) => {
                    tracing::warn!("skipping a host-load sample: {err}");
                    None
                }
            }),
            Err(err) => {
                tracing::warn!("host load cannot be read here ({err}); the load source is off")
            }
        }
    }
    if config.ticker_ms > 0 {
        let mut ticker = ticker::Ticker::new(config.ticker_seed);
        every(state, config.ticker_ms, move || {
            Some(EventBody::Ticker(ticker.step()))
        });
    }
}

fn every(
    state: &AppState,
    interval_ms: u64,
    mut produce: impl FnMut() -> Option<EventBody> + Send + 'static,
) {
    let hub = state.hub.clone();
    let faults = state.faults.clone();
    let shutdown = state.shutdown.clone();
    let period = Duration::from_millis(interval_ms);
    state.tasks.spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // A source that fell behind (a stalled machine) carries on at its pace rather than bursting.
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = interval.tick() => {
                    // A paused server still keeps its own time (the ticker walks on); it just says nothing.
                    if let Some(body) = produce()
                        && !faults.paused()
                    {
                        hub.publish(body);
                    }
                }
            }
        }
    });
}
