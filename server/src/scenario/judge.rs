//! A step's expectations judged against its experiment's figures — the lab's shared definitions
//! (noticed, redialed, recovered, delivered, cuts), never its words — with a verdict in words that says
//! by how much.

use switchboard_shared::app::AppChannel;
use switchboard_shared::app::experiment::{Experiment, Observation};
use switchboard_shared::format::format_ms;

use super::file::{Expect, Step};

/// One expectation on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Held, failed, or not decided yet (still within its time).
    pub held: Option<bool>,
    /// "your phone call (/socket.io/) noticed after 6.1 s ✓ (≤ 40 s)".
    pub text: String,
}

/// Whether a channel is one a selector names: its kind (`phone`) or its path (`/socket.io/`).
pub fn selects(selector: &str, channel: &AppChannel) -> bool {
    selector == channel.kind.as_str() || selector == channel.path
}

/// The channels a step's expectations judge: those it aims at, else those the scenario waits for,
/// else every channel the experiment met.
pub fn judged<'a>(
    step: &Step,
    watched: &[String],
    experiment: &Experiment,
    channels: &'a [AppChannel],
) -> Vec<&'a AppChannel> {
    let selectors: Vec<&String> = step.channel.iter().chain(watched).collect();
    channels
        .iter()
        .filter(|channel| {
            if selectors.is_empty() {
                experiment.figures.get(&channel.id).is_some_and(|seen| {
                    seen.open_at_start > 0 || seen.attempts > 0 || seen.got.sent > 0
                })
            } else {
                selectors.iter().any(|selector| selects(selector, channel))
            }
        })
        .collect()
}

/// Every expectation of `expect` on `channel`, as of `now_ms`.
pub fn judge(
    expect: &Expect,
    experiment: &Experiment,
    channel: &AppChannel,
    now_ms: f64,
) -> Vec<Check> {
    let empty = Observation::default();
    let seen = experiment.figures.get(&channel.id).unwrap_or(&empty);
    let your = format!("your {} ({})", channel.kind.called(), channel.path);
    let start = experiment.started_ms;
    let mut checks = Vec::new();
    // An event that must come within `within_s` of `from`: held when it came in time, failed once it
    // came late or the time is up, undecided before.
    let within = |what: &str, at: Option<f64>, from: Option<f64>, within_s: f64| {
        let limit = within_s * 1000.0;
        match (at, from) {
            (Some(at), Some(from)) if at - from <= limit => Check {
                held: Some(true),
                text: format!(
                    "{your} {what} after {} ✓ (≤ {})",
                    format_ms(at - from),
                    format_ms(limit)
                ),
            },
            (Some(at), Some(from)) => Check {
                held: Some(false),
                text: format!(
                    "{your} {what} after {} ✗ (≤ {}: {} late)",
                    format_ms(at - from),
                    format_ms(limit),
                    format_ms(at - from - limit)
                ),
            },
            (None, Some(from)) if now_ms - from > limit => Check {
                held: Some(false),
                text: format!(
                    "{your} never {what} ✗ (not in {}, ≤ {} expected)",
                    format_ms(now_ms - from),
                    format_ms(limit)
                ),
            },
            _ => Check {
                held: None,
                text: format!(
                    "{your} has not {what} yet (≤ {} expected)",
                    format_ms(limit)
                ),
            },
        }
    };
    if let Some(s) = expect.noticed_within_s {
        if seen.open_at_start == 0 {
            checks.push(Check {
                held: Some(false),
                text: format!(
                    "{your} had no connection open when the step began: nothing to notice ✗"
                ),
            });
        } else {
            checks.push(within("noticed", seen.noticed_ms, Some(start), s));
        }
    }
    if let Some(s) = expect.redialed_within_s {
        checks.push(within("redialed", seen.redialed_ms, Some(start), s));
    }
    if let Some(s) = expect.recovered_within_s {
        // Counted from the fault's end; a drop ends as it begins.
        checks.push(within(
            "got messages again",
            seen.recovered_ms,
            experiment.ended_ms,
            s,
        ));
    }
    if let Some(s) = expect.back_within_s {
        // Its fallback transport (then named) when that was its way back, as the findings say; else its
        // own connection.
        // (A client there all along, before the socket was lost, is never its way back: the
        // observation keeps a fallback only for a session begun since.)
        let (at, over) = match seen.back_over_fallback() {
            Some((over, at)) => (Some(at), format!(" over {over}")),
            None => (seen.own_back_ms(), String::new()),
        };
        checks.push(within(&format!("was back{over}"), at, Some(start), s));
    }
    if let Some(cuts) = expect.cuts {
        let held = seen.cuts == cuts;
        checks.push(Check {
            held: Some(held),
            text: format!(
                "the lab cut {your} {} time{} {}",
                seen.cuts,
                if seen.cuts == 1 { "" } else { "s" },
                if held {
                    format!("✓ (= {cuts})")
                } else {
                    format!("✗ (= {cuts} expected)")
                }
            ),
        });
    }
    if let Some(s) = expect.heartbeat_at_most_s {
        let limit = s * 1000.0;
        checks.push(match channel.heartbeat_ms {
            Some(every) if every <= limit => Check {
                held: Some(true),
                text: format!(
                    "{your} heartbeats every {} ✓ (≤ {})",
                    format_ms(every),
                    format_ms(limit)
                ),
            },
            Some(every) => Check {
                held: Some(false),
                text: format!(
                    "{your} heartbeats every {} ✗ (≤ {} expected: {} too slow)",
                    format_ms(every),
                    format_ms(limit),
                    format_ms(every - limit)
                ),
            },
            // Read from a few beats on a connection: undecided until the step's watch ends.
            None => Check {
                held: None,
                text: format!(
                    "{your} showed no heartbeat (one every ≤ {} expected)",
                    format_ms(limit)
                ),
            },
        });
    }
    if expect.delivered_all == Some(true) {
        let got = &seen.got;
        let missed = got.withheld + got.swallowed + got.lost;
        checks.push(Check {
            held: Some(missed == 0),
            text: if missed == 0 {
                format!("the browser got all {} message{} your app sent on {your} ✓", got.sent, if got.sent == 1 { "" } else { "s" })
            } else {
                format!(
                    "the browser got {} of {} messages your app sent on {your} ✗ ({} withheld, {} swallowed, {} lost)",
                    got.delivered, got.sent, got.withheld, got.swallowed, got.lost
                )
            },
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_shared::app::experiment::{ExperimentKind, ExperimentState, Settings};
    use switchboard_shared::app::{AppFaultKind, Got};
    use switchboard_shared::har::ChannelKind;

    fn phone() -> AppChannel {
        AppChannel {
            id: "c1".into(),
            kind: ChannelKind::Phone,
            method: "GET".into(),
            path: "/socket.io/".into(),
            name: "ws://x/socket.io/".into(),
            requests: 1,
            empty_answers: 0,
            bytes_up: 0,
            bytes_down: 0,
            messages: 0,
            open: 1,
            dead: 0,
            got: Got::default(),
            reconnects: 0,
            clients: 1,
            uploads: 0,
            upload_bytes: 0,
            heartbeat_ms: None,
            longest_silence_ms: None,
            cut_by_fault: 0,
            cut_by_idle_timeout: 0,
            verdict: String::new(),
        }
    }

    fn experiment(seen: Observation) -> Experiment {
        Experiment {
            id: 1,
            kind: ExperimentKind::Fault(AppFaultKind::HalfOpen),
            settings: Settings::default(),
            title: String::new(),
            channels: vec!["all".into()],
            started_ms: 0.0,
            ended_ms: Some(30_000.0),
            window_closes_ms: None,
            state: ExperimentState::Observing,
            superseded_by: None,
            findings: Vec::new(),
            figures: BTreeMap::from([("c1".to_owned(), seen)]),
        }
    }

    fn seen(noticed: Option<f64>, recovered: Option<f64>) -> Observation {
        serde_json::from_value(serde_json::json!({
            "open_at_start": 1, "noticed_ms": noticed, "recovered_ms": recovered,
            "attempts": 0, "attempts_during_fault": 0, "refused": 0, "unavailable": 0, "errors": 0,
            "got_through": 0, "redialed_ms": null, "got": Got::default(), "cuts": 2
        }))
        .unwrap()
    }

    fn expect(noticed: f64, recovered: f64) -> Expect {
        Expect {
            noticed_within_s: Some(noticed),
            recovered_within_s: Some(recovered),
            ..Expect::default()
        }
    }

    #[test]
    fn back_is_the_first_way_through_a_fallback_transport_named() {
        let back = |fallback: Option<f64>, redialed: Option<f64>| {
            let mut seen = seen(Some(7_000.0), None);
            seen.redialed_ms = redialed;
            seen.fallback = fallback.map(|at| ("GET /socket.io/".to_owned(), at));
            let expect = Expect {
                back_within_s: Some(10.0),
                ..Expect::default()
            };
            judge(&expect, &experiment(seen), &phone(), 40_000.0).remove(0)
        };
        assert_eq!(
            back(Some(7_800.0), Some(30_100.0)),
            Check {
                held: Some(true),
                text: "your phone call (/socket.io/) was back over GET /socket.io/ after 7.8 s ✓ (≤ 10.0 s)".into()
            }
        );
        assert_eq!(
            back(None, Some(30_100.0)).text,
            "your phone call (/socket.io/) was back after 30.1 s ✗ (≤ 10.0 s: 20.1 s late)"
        );
        assert_eq!(
            back(Some(1_282.0), Some(1_290.0)).text,
            "your phone call (/socket.io/) was back after 1.3 s ✓ (≤ 10.0 s)",
            "the poll that opened its own redial"
        );
        assert_eq!(
            back(Some(31_000.0), Some(2_000.0)).text,
            "your phone call (/socket.io/) was back after 2.0 s ✓ (≤ 10.0 s)",
            "its own redial came first"
        );
        // On the other transport before anyone gave up on the socket: no way back, the socket's own
        // redial is.
        let mut upgrading = seen(None, None);
        upgrading.redialed_ms = Some(16_400.0);
        upgrading.all_along = Some(("GET /socket.io/".to_owned(), 100.0));
        let expect = Expect {
            back_within_s: Some(10.0),
            ..Expect::default()
        };
        assert_eq!(
            judge(&expect, &experiment(upgrading), &phone(), 40_000.0)
                .remove(0)
                .text,
            "your phone call (/socket.io/) was back after 16.4 s ✗ (≤ 10.0 s: 6.4 s late)"
        );
    }

    #[test]
    fn in_time_late_never_and_not_yet() {
        let checks = judge(
            &expect(40.0, 5.0),
            &experiment(seen(Some(6_100.0), Some(30_700.0))),
            &phone(),
            40_000.0,
        );
        assert_eq!(
            checks,
            [
                Check {
                    held: Some(true),
                    text: "your phone call (/socket.io/) noticed after 6.1 s ✓ (≤ 40.0 s)".into()
                },
                Check {
                    held: Some(true),
                    text:
                        "your phone call (/socket.io/) got messages again after 700 ms ✓ (≤ 5.0 s)"
                            .into()
                },
            ]
        );
        let late = judge(
            &expect(5.0, 5.0),
            &experiment(seen(Some(7_000.0), None)),
            &phone(),
            33_000.0,
        );
        assert_eq!(
            late[0].text,
            "your phone call (/socket.io/) noticed after 7.0 s ✗ (≤ 5.0 s: 2.0 s late)"
        );
        assert_eq!(
            late[1].held, None,
            "3 s after the end: recovery still has time"
        );
        let never = judge(
            &expect(5.0, 5.0),
            &experiment(seen(None, None)),
            &phone(),
            36_000.0,
        );
        assert_eq!(
            never[0].text,
            "your phone call (/socket.io/) never noticed ✗ (not in 36.0 s, ≤ 5.0 s expected)"
        );
        assert_eq!(never[1].held, Some(false));
    }

    #[test]
    fn the_heartbeat_pace_is_the_channels_own() {
        let expect = Expect {
            heartbeat_at_most_s: Some(10.0),
            ..Expect::default()
        };
        let mut channel = phone();
        channel.heartbeat_ms = Some(25_000.0);
        let checks = judge(&expect, &experiment(seen(None, None)), &channel, 0.0);
        assert_eq!(
            checks[0].text,
            "your phone call (/socket.io/) heartbeats every 25.0 s ✗ (≤ 10.0 s expected: 15.0 s too slow)"
        );
        channel.heartbeat_ms = Some(2_000.0);
        assert_eq!(
            judge(&expect, &experiment(seen(None, None)), &channel, 0.0)[0].held,
            Some(true)
        );
    }

    #[test]
    fn cuts_are_counted_exactly() {
        let checks = judge(
            &Expect {
                cuts: Some(0),
                ..Expect::default()
            },
            &experiment(seen(None, None)),
            &phone(),
            0.0,
        );
        assert_eq!(
            checks[0].text,
            "the lab cut your phone call (/socket.io/) 2 times ✗ (= 0 expected)"
        );
    }
}
