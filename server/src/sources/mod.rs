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
    let state = state.clone();
    let period = Duration::from_millis(interval_ms);
    // Long enough to survive a missed tick or two, short enough that another instance takes over soon
    // after the one that held it is gone.
    let lease = (period * 3).max(Duration::from_secs(2));
    state.tasks.clone().spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // A source that fell behind (a stalled machine) carries on at its pace rather than bursting.
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                _ = interval.tick() => {
                    // A paused server still keeps its own time (the ticker walks on); it just says nothing.
                    let Some(body) = produce() else { continue };
                    if state.faults.paused() {
                        continue;
                    }
                    // Several instances share one stream: one of them speaks for the sources.
                    if let Some(backplane) = &state.backplane
                        && !backplane.leads_sources(lease).await
                    {
                        continue;
                    }
                    if let Err(err) = state.publish(body).await {
                        tracing::debug!("a source's event was not published: {err}");
                    }
                }
            }
        }
    });
}
