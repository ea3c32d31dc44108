//! The verdict in words: which lane brings news freshest and at what cost, what was wasted and lost,
//! and after a fault which lane was back first — every claim naming the figures it rests on.

use switchboard_shared::stats::group_thousands;
use switchboard_shared::{FaultKind, LaneId, PerLane};

use super::{Score, named, sentence};
use crate::format::format_ms;
use crate::store::{Closed, FaultSpan, Store};

/// The last fault, as the verdict needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastFault {
    pub kind: FaultKind,
    /// The lanes it hit.
    pub lanes: Vec<LaneId>,
    /// When it began, on the page's clock.
    pub start_ms: f64,
}

impl LastFault {
    fn of(span: &FaultSpan) -> LastFault {
        LastFault {
            kind: span.fault.kind,
            lanes: LaneId::ALL
                .into_iter()
                .filter(|&lane| span.covers(lane))
                .collect(),
            start_ms: span.start_ms,
        }
    }
}

/// What the verdict is made from besides the scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// How long the period has lasted, ms.
    pub counted_ms: f64,
    /// What the lanes ran under in words ("on lossy under bursty traffic"), when known.
    pub setting: Option<String>,
    /// The last fault that began in the period.
    pub last_fault: Option<LastFault>,
    /// Each lane's emulated network, where it is not a perfect line: its preset name.
    pub networks: PerLane<Option<String>>,
}

impl Context {
    /// The period going on, at `now_ms`.
    pub fn now(store: &Store, now_ms: f64) -> Context {
        let setting = store.setting();
        Context {
            counted_ms: (now_ms - store.period().start_ms).max(0.0),
            setting: setting.words(),
            last_fault: store.last_fault().map(LastFault::of),
            networks: setting.networks,
        }
    }

    /// A period that ended.
    pub fn closed(closed: &Closed) -> Context {
        Context {
            counted_ms: closed.duration_ms(),
            setting: closed.setting.words(),
            last_fault: closed.last_fault.as_ref().map(LastFault::of),
            networks: closed.setting.networks.clone(),
        }
    }
}

/// The verdict in words: which lane brings news freshest and at what cost, how much of the letters'
/// postage was wasted, what was lost, and — after a fault — which lane came back first. Every claim
/// names the measured figures it rests on.
pub fn verdict(scores: &PerLane<Score>, context: &Context) -> String {
    let mut said: Vec<String> = Vec::new();
    let timed: Vec<(LaneId, &Score, f64)> = scores
        .iter()
        .filter(|(_, score)| score.took_part())
        .filter_map(|(lane, score)| score.delay_p50.map(|p50| (lane, score, p50)))
        .collect();
    let counted = format_ms(context.counted_ms.max(0.0));
    let over = match &context.setting {
        Some(setting) => format!("{}, for the last {counted}", sentence(setting)),
        None => format!("Over the last {counted}"),
    };
    let fastest = timed
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2).then(a.0.index().cmp(&b.0.index())));
    let slowest = timed
        .iter()
        .max_by(|a, b| a.2.total_cmp(&b.2).then(b.0.index().cmp(&a.0.index())));
    match (fastest, slowest) {
        (Some(&(fast, fast_score, fast_p50)), Some(&(slow, slow_score, slow_p50)))
            if fast != slow =>
        {
            // A p50 under a millisecond is counted as one: "news 600× fresher" than a rounding error
            // would be a claim the clock cannot back.
            let ratio = slow_p50 / fast_p50.max(1.0);
            let fresh = if ratio >= 1.5 {
                format!(
                    "{over}, {} delivered news {} fresher than {} (p50 {} vs {})",
                    named(fast),
                    times(ratio),
                    named(slow),
                    format_ms(fast_p50),
                    format_ms(slow_p50)
                )
            } else {
                format!(
                    "{over}, every lane delivered news about as fresh (p50 {} on {} to {} on {})",
                    format_ms(fast_p50),
                    named(fast),
                    format_ms(slow_p50),
                    named(slow)
                )
            };
            let cost = match (fast_score.bytes_per_message, slow_score.bytes_per_message) {
                (Some(fast_bytes), Some(slow_bytes)) if slow_bytes > 0.0 => {
                    let share = fast_bytes / slow_bytes;
                    let figures = format!(
                        "{} vs {}",
                        fast_score.bytes_shown(fast_bytes),
                        slow_score.bytes_shown(slow_bytes)
                    );
                    // Within a tenth either way is "about the same": bytes per message wander that
                    // much as headers and batches vary.
                    if share < 0.9 {
                        format!(
                            " at {:.0} % of the bytes per message ({figures})",
                            share * 100.0
                        )
                    } else if share >= 1.5 {
                        format!(
                            ", though at {} the bytes per message ({figures})",
                            times(share)
                        )
                    } else if share > 1.1 {
                        format!(
                            ", though at {:.0} % more bytes per message ({figures})",
                            (share - 1.0) * 100.0
                        )
                    } else {
                        format!(" at about the same bytes per message ({figures})")
                    }
                }
                _ => String::new(),
            };
            said.push(format!("{fresh}{cost}."));
        }
        (Some(&(lane, _, p50)), _) => said.push(format!(
            "{over}, only {} has delivered news (p50 {}).",
            named(lane),
            format_ms(p50)
        )),
        _ => said.push("No lane has delivered news yet.".to_owned()),
    }

    // Postage wasted: the letters lanes' empty answers.
    let empties: Vec<String> = scores
        .iter()
        .filter(|(lane, score)| lane.shape().is_request() && score.requests > 0)
        .map(|(lane, score)| {
            format!(
                "{:.0} % of {} came back empty ({} of {})",
                score.empty_percent.unwrap_or(0.0),
                named(lane),
                group_thousands(score.empty),
                group_thousands(score.requests)
            )
        })
        .collect();
    if !empties.is_empty() {
        said.push(sentence(&format!("{}.", empties.join("; "))));
    }

    // Losses.
    let missing: Vec<String> = scores
        .iter()
        .filter(|(_, score)| score.took_part() && score.missed > 0)
        .map(|(lane, score)| {
            if score.lost > 0 {
                format!(
                    "{} missed {} ({} for good)",
                    named(lane),
                    group_thousands(score.missed),
                    group_thousands(score.lost)
                )
            } else {
                format!("{} missed {}", named(lane), group_thousands(score.missed))
            }
        })
        .collect();
    if missing.is_empty() {
        if scores.iter().any(|(_, score)| score.took_part()) {
            said.push("No lane missed an event.".to_owned());
        }
    } else {
        said.push(sentence(&format!("{}.", missing.join("; "))));
    }

    if let Some(fault) = &context.last_fault {
        said.push(after_fault(scores, fault));
    }

    let emulated: Vec<String> = context
        .networks
        .iter()
        .filter_map(|(lane, network)| {
            network
                .as_ref()
                .map(|name| format!("{} over {name}", named(lane)))
        })
        .collect();
    // When every lane runs on the same network the opening sentence has named it already.
    let mixed = context
        .networks
        .iter()
        .any(|(_, network)| network != &context.networks[LaneId::Poll]);
    if mixed && !emulated.is_empty() {
        said.push(sentence(&format!(
            "On an emulated network: {}.",
            emulated.join(", ")
        )));
    }
    said.join(" ")
}

/// Which lane came back first after the last fault, and which are still down.
fn after_fault(scores: &PerLane<Score>, fault: &LastFault) -> String {
    let named_fault = format!("the last fault ({})", fault.kind.title());
    let hit: Vec<(LaneId, &Score)> = fault
        .lanes
        .iter()
        .map(|&lane| (lane, &scores[lane]))
        .filter(|(_, score)| score.took_part())
        // Only an outage detected after the fault began, and soon enough to be blamed on it, is its
        // doing: a lane that broke minutes later (six extra streams starving the letters) is not.
        .filter(|(_, score)| {
            score.broke_at_ms.is_some_and(|at| {
                at >= fault.start_ms && at - fault.start_ms < crate::store::FAULT_BLAME_MS
            })
        })
        .collect();
    if hit.is_empty() {
        return sentence(&format!("{named_fault} broke no lane."));
    }
    let down: Vec<&str> = hit
        .iter()
        .filter(|(_, score)| score.in_outage)
        .map(|&(lane, _)| named(lane))
        .collect();
    // Each lane back: when it noticed and when it was back, both from the fault's start, so the
    // ranking is by when it was back — a lane quick to recover once it noticed late was not first.
    let mut back: Vec<(LaneId, f64, f64)> = hit
        .iter()
        .filter(|(_, score)| !score.in_outage)
        .filter_map(|&(lane, score)| {
            let noticed = score.broke_at_ms? - fault.start_ms;
            Some((lane, noticed, noticed + score.recover_ms?))
        })
        .collect();
    back.sort_by(|a, b| a.2.total_cmp(&b.2));
    let parts = |noticed: f64, back: f64| {
        format!(
            "noticed after {}, back {} later",
            format_ms(noticed),
            format_ms(back - noticed)
        )
    };
    let mut words = match back.as_slice() {
        [] => format!("After {named_fault}, no lane is back yet"),
        [(lane, noticed, at)] => format!(
            "After {named_fault}, {} was back {} after it began ({})",
            named(*lane),
            format_ms(*at),
            parts(*noticed, *at)
        ),
        [
            (first, first_noticed, first_at),
            ..,
            (last, last_noticed, last_at),
        ] => format!(
            "After {named_fault}, {} was back first, {} after it began ({}); {} took {} ({})",
            named(*first),
            format_ms(*first_at),
            parts(*first_noticed, *first_at),
            named(*last),
            format_ms(*last_at),
            parts(*last_noticed, *last_at)
        ),
    };
    if !down.is_empty() {
        words.push_str(&format!("; {} still down", join_and(&down)));
    }
    words.push('.');
    words
}

fn join_and(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A ratio as a person says it: `2.4×`, `150×`.
fn times(ratio: f64) -> String {
    if ratio < 10.0 {
        format!("{ratio:.1}×")
    } else {
        format!("{}×", group_thousands(ratio.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::tests::{lane, scores};

    #[test]
    fn the_verdict_names_the_freshest_and_the_stalest_lane_with_their_figures() {
        let context = Context {
            counted_ms: 60_000.0,
            ..Context::default()
        };
        assert_eq!(
            verdict(&scores(), &context),
            "Over the last 1 min, the phone call delivered news 186× fresher than letters \
             (p50 3 ms vs 558 ms) at 48 % of the bytes per message (330 B vs 690 B). \
             46 % of letters came back empty (55 of 120). No lane missed an event."
        );
    }

    #[test]
    fn the_verdict_says_who_came_back_first_after_a_fault_and_who_is_still_down() {
        let mut scores = scores();
        scores[LaneId::Ws].broke_at_ms = Some(10_100.0);
        scores[LaneId::Ws].recover_ms = Some(1_200.0);
        scores[LaneId::Sse].broke_at_ms = Some(10_050.0);
        scores[LaneId::Sse].recover_ms = Some(3_400.0);
        scores[LaneId::Poll].broke_at_ms = Some(10_200.0);
        scores[LaneId::Poll].in_outage = true;
        // An outage before the fault is not its doing.
        scores[LaneId::LongPoll] = lane(100, 40.0, 900.0);
        scores[LaneId::LongPoll].broke_at_ms = Some(2_000.0);
        scores[LaneId::LongPoll].recover_ms = Some(100.0);
        scores[LaneId::Ws].missed = 3;
        scores[LaneId::Ws].lost = 2;
        let mut networks = PerLane::default();
        networks[LaneId::Poll] = Some("3g".to_owned());
        let context = Context {
            counted_ms: 90_000.0,
            setting: Some("on mixed networks".into()),
            last_fault: Some(LastFault {
                kind: FaultKind::Drop,
                lanes: LaneId::ALL.to_vec(),
                start_ms: 10_000.0,
            }),
            networks,
        };
        let words = verdict(&scores, &context);
        assert!(
            words.contains("The phone call missed 3 (2 for good)."),
            "{words}"
        );
        assert!(
            words.contains(
                "After the last fault (Drop), the phone call was back first, 1.3 s after it began \
                 (noticed after 100 ms, back 1.2 s later); the radio took 3.5 s (noticed after 50 ms, \
                 back 3.4 s later); letters still down."
            ),
            "{words}"
        );
        assert!(
            words.ends_with("On an emulated network: letters over 3g."),
            "{words}"
        );
    }

    /// After a 5 s half-open on every lane the radio noticed at 3.4 s and was back at 3.9 s; held
    /// letters noticed at 5.0 s and were back 153 ms later. The radio was back first.
    #[test]
    fn lanes_are_ranked_by_when_they_were_back_and_a_later_outage_is_not_the_faults() {
        let mut scores = PerLane::<Score>::default();
        scores[LaneId::Sse] = lane(100, 4.0, 340.0);
        scores[LaneId::Sse].broke_at_ms = Some(13_400.0);
        scores[LaneId::Sse].recover_ms = Some(500.0);
        scores[LaneId::LongPoll] = lane(100, 40.0, 900.0);
        scores[LaneId::LongPoll].broke_at_ms = Some(15_000.0);
        scores[LaneId::LongPoll].recover_ms = Some(153.0);
        // Letters broke five minutes later (six extra streams held every connection): not the fault's.
        scores[LaneId::Poll] = lane(100, 558.0, 690.0);
        scores[LaneId::Poll].broke_at_ms = Some(310_000.0);
        scores[LaneId::Poll].in_outage = true;
        let context = Context {
            counted_ms: 400_000.0,
            last_fault: Some(LastFault {
                kind: FaultKind::HalfOpen,
                lanes: LaneId::ALL.to_vec(),
                start_ms: 10_000.0,
            }),
            ..Context::default()
        };
        let words = verdict(&scores, &context);
        assert!(
            words.contains(
                "After the last fault (Half-open), the radio was back first, 3.9 s after it began \
                 (noticed after 3.4 s, back 500 ms later); held letters took 5.2 s (noticed after \
                 5.0 s, back 153 ms later)."
            ),
            "{words}"
        );
        assert!(!words.contains("still down"), "{words}");
    }

    #[test]
    fn the_verdict_opens_with_the_period_it_describes() {
        let context = Context {
            counted_ms: 72_000.0,
            setting: Some("on lossy under bursty traffic".into()),
            networks: PerLane::from_fn(|_| Some("lossy".to_owned())),
            ..Context::default()
        };
        let words = verdict(&scores(), &context);
        assert!(
            words.starts_with(
                "On lossy under bursty traffic, for the last 1 min 12 s, the phone call delivered \
                 news 186× fresher than letters"
            ),
            "{words}"
        );
        // Every lane on one network: the opening named it, no second sentence lists the lanes.
        assert!(!words.contains("On an emulated network"), "{words}");
    }

    #[test]
    fn lanes_about_as_fresh_are_not_ranked_and_a_fault_that_broke_nothing_says_so() {
        let mut scores = PerLane::<Score>::default();
        scores[LaneId::Ws] = lane(10, 3.0, 300.0);
        scores[LaneId::Sse] = lane(10, 4.0, 310.0);
        let context = Context {
            counted_ms: 5_000.0,
            last_fault: Some(LastFault {
                kind: FaultKind::Pause,
                lanes: vec![LaneId::Ws],
                start_ms: 1.0,
            }),
            ..Context::default()
        };
        assert_eq!(
            verdict(&scores, &context),
            "Over the last 5.0 s, every lane delivered news about as fresh (p50 3 ms on the phone \
             call to 4 ms on the radio) at about the same bytes per message (300 B vs 310 B). No lane \
             missed an event. The last fault (Hiccup) broke no lane."
        );
        assert_eq!(
            verdict(&PerLane::default(), &Context::default()),
            "No lane has delivered news yet."
        );
    }
}
