//! The sources of the stream that the server itself produces: real host load and a simulated ticker.
//! How often they speak is the traffic pattern's say ([`crate::traffic`]).
//! (The third source, chat, arrives through `POST /api/messages` and WebSocket frames.)

pub mod load;
pub mod ticker;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use switchboard_shared::EventBody;
use switchboard_shared::traffic::Schedule;
use tokio::time::Instant;

use crate::AppState;

/// Starts every source whose interval is not zero; each follows the traffic pattern and stops on
/// shutdown.
pub fn spawn(state: &AppState) {
    let config = &state.config;
    if config.load_ms > 0 {
        match load::LoadSampler::new() {
            Ok(mut sampler) => run(
                state,
                |schedule, _| schedule.load_ms(),
                move || match sampler.sample() {
                    Ok(sample) => Some(EventBody::Load(sample)),
                    Err(err) => {
                        tracing::warn!("skipping a host-load sample: {err}");
                        None
                    }
                },
            ),
            Err(err) => {
                tracing::warn!("host load cannot be read here ({err}); the load source is off")
            }
        }
    }
    if config.ticker_ms > 0 {
        let mut ticker = ticker::Ticker::new(config.ticker_seed);
        run(
            state,
            |schedule, rng| schedule.next_quote_ms(|| rng.random::<f64>()),
            move || Some(EventBody::Ticker(ticker.step())),
        );
    }
}

/// Runs one source: `gap` says how long until its next event under the current pattern (`None`: not
/// under this one), `produce` makes the event.
fn run(
    state: &AppState,
    mut gap: impl FnMut(&mut Schedule, &mut StdRng) -> Option<u64> + Send + 'static,
    mut produce: impl FnMut() -> Option<EventBody> + Send + 'static,
) {
    let state = state.clone();
    state.tasks.clone().spawn(async move {
        let config = &state.config;
        let plan = |pattern| Schedule::new(pattern, config.ticker_ms, config.load_ms);
        let mut traffic = state.traffic.subscribe();
        let mut schedule = plan(*traffic.borrow_and_update());
        // Seeded, so a run of a pattern can be repeated like the ticker's walk.
        let mut rng = StdRng::seed_from_u64(config.ticker_seed);
        let mut due = gap(&mut schedule, &mut rng).map(|ms| Instant::now() + ms_duration(ms));
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                changed = traffic.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    // A new pattern starts now, not after what is left of the old one's gap.
                    schedule = plan(*traffic.borrow_and_update());
                    due = gap(&mut schedule, &mut rng).map(|ms| Instant::now() + ms_duration(ms));
                }
                () = sleep_until(due) => {
                    // Deadlines rather than sleeps: the pace does not drift by the time publishing takes,
                    // and a source that fell behind (a stalled machine) carries on rather than bursting.
                    let now = Instant::now();
                    due = gap(&mut schedule, &mut rng)
                        .map(|ms| {
                            let behind = now.checked_sub(ms_duration(ms)).unwrap_or(now);
                            due.unwrap_or(now).max(behind) + ms_duration(ms)
                        });
                    // A paused server still keeps its own time (the ticker walks on); it just says nothing.
                    let Some(body) = produce() else { continue };
                    if state.faults.paused() {
                        continue;
                    }
                    // Several instances share one stream: one of them speaks for the sources, and holds
                    // the lease longer than the pattern's longest silence.
                    let lease = (ms_duration(schedule.longest_silence_ms()) * 3)
                        .max(Duration::from_secs(2));
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

fn ms_duration(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Sleeps until `due`, or for ever when nothing is due (the source is silent under this pattern).
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
