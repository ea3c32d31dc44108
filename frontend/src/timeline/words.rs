//! What a mark or an exchange on the timeline means, in a sentence: the detail panel's first line, and
//! what a screen reader says when the keyboard selects it. Pure text over the store, tested natively.

use switchboard_shared::{LaneId, Shape};

use super::layout::Picked;
use crate::figures::{named, sentence};
use crate::format::{format_bytes, format_ms};
use crate::store::{Mark, MarkKind, Outcome, Receipt, Span, Store};

/// The sentence for what the selection is on.
pub fn explain(store: &Store, picked: &Picked, now_ms: f64) -> String {
    match picked {
        Picked::Mark(mark) => explain_mark(store, mark),
        Picked::Span(span) => explain_span(span, now_ms),
    }
}

/// "plural" for counts in sentences.
fn events(n: u32) -> String {
    if n == 1 {
        "1 event".to_owned()
    } else {
        format!("{n} events")
    }
}

/// What one span of `lane` is, in the detail: words per lane, not per shape, so an endless letter is
/// not called a radio nor the video call a phone call.
pub fn span_kind(lane: LaneId) -> &'static str {
    match lane {
        LaneId::Poll => "letter (one request, one answer)",
        LaneId::LongPoll => "held letter (the server waits for news)",
        LaneId::HttpStream => "endless letter (one answer that never ends, a JSON line per event)",
        LaneId::Sse => "radio (a one-way event stream)",
        LaneId::Ws => "phone call (a two-way line)",
        LaneId::WebTransport => "video call (QUIC: streams both ways, datagrams that may be lost)",
    }
}

pub fn explain_mark(store: &Store, mark: &Mark) -> String {
    let bytes = format_bytes(mark.bytes as f64);
    match &mark.what {
        MarkKind::Event {
            seq,
            kind,
            delay_ms,
            receipt,
            ..
        } => {
            let how = match mark.lane {
                LaneId::Poll => "it waited at the server until the next letter asked for it",
                LaneId::LongPoll => "the held letter was answered as soon as it was published",
                LaneId::HttpStream => {
                    "it was written into the endless answer as soon as it was published"
                }
                LaneId::Sse => "the radio broadcast it as soon as it was published",
                LaneId::Ws => "it was pushed down the phone line as soon as it was published",
                LaneId::WebTransport => {
                    "it was sent on the video call's QUIC connection as soon as it was published"
                }
            };
            let receipt = match receipt {
                Receipt::New => "",
                Receipt::AfterGap => " It came after a gap: the seqs before it had not arrived.",
                Receipt::Recovered => " It came late and filled a hole the lane had noticed.",
                Receipt::Duplicate => {
                    " The lane had it already: this copy was dropped and counted as a duplicate."
                }
            };
            format!(
                "Event #{seq} ({kind}) reached {} {} after the server stamped it: {how}. {bytes} on the wire.{receipt}",
                named(mark.lane),
                format_ms(*delay_ms)
            )
        }
        MarkKind::Heartbeat { .. } => {
            let interval = previous_heartbeat(store, mark)
                .map(|earlier| format!(", every {}", format_ms(mark.at_ms - earlier)))
                .unwrap_or_default();
            format!(
                "Heartbeat: the server's proof the line is alive{interval}. Without it a quiet line and a dead one look the same. {bytes} on the wire."
            )
        }
        MarkKind::Sent { label, .. } => {
            format!("The browser said this on the line: {label}, {bytes} on the wire.")
        }
        MarkKind::Received { label, .. } => {
            format!(
                "The server said this on the line (not an event): {label}, {bytes} on the wire."
            )
        }
        MarkKind::Gap { first, last } => format!(
            "{} gone for good: the server no longer had {} when this lane asked (it keeps a bounded history).",
            seqs(*first, *last),
            if first == last { "it" } else { "them" }
        ),
        MarkKind::Missed { first, last } => format!(
            "{} never came and nothing will resend {}: a later event arrived first.",
            if first == last {
                format!("Event #{first}")
            } else {
                format!("Events #{first}–#{last}")
            },
            if first == last { "it" } else { "them" }
        ),
        MarkKind::Error { message } => format!("Trouble on this lane: {message}."),
        MarkKind::Dead { silent_ms } => format!(
            "The watchdog hung up: nothing came for {}, two and a half heartbeats, so the line was declared dead and dialled again.",
            format_ms(*silent_ms)
        ),
        MarkKind::Restart { lost } => format!(
            "The server's history started over (a restart): {lost} event{} this lane had not got are lost.",
            if *lost == 1 { "" } else { "s" }
        ),
        MarkKind::Moved { from, to } => format!(
            "This lane is now served by instance {to} instead of {from} (the instances share one stream); it resumed where it left off."
        ),
    }
}

fn seqs(first: u64, last: u64) -> String {
    if first == last {
        format!("Event #{first} is")
    } else {
        format!("Events #{first}–#{last} are")
    }
}

/// The heartbeat before `mark` on its lane, if the timeline still holds it.
fn previous_heartbeat(store: &Store, mark: &Mark) -> Option<f64> {
    store
        .marks()
        .iter()
        .rev()
        .filter(|other| other.lane == mark.lane && other.at_ms < mark.at_ms)
        .find(|other| matches!(other.what, MarkKind::Heartbeat { .. }))
        .map(|other| other.at_ms)
}

pub fn explain_span(span: &Span, now_ms: f64) -> String {
    let took = format_ms(span.end_ms.unwrap_or(now_ms) - span.start_ms);
    let bytes = format_bytes((span.bytes_up + span.bytes_down) as f64);
    let cache = if span.cached {
        " A proxy's cache answered it: the server never saw it."
    } else {
        ""
    };
    let what = match (span.shape, &span.outcome) {
        (Shape::Request | Shape::HeldRequest, Outcome::Pending) => {
            format!("This letter is on its way: sent {took} ago, no answer yet.")
        }
        (Shape::Request, Outcome::Empty) => {
            format!("This letter came back empty: {bytes} on the wire for nothing.")
        }
        (Shape::HeldRequest, Outcome::Empty) => format!(
            "The server held this letter for its whole wait ({took}) and nothing came: {bytes} on the wire for nothing."
        ),
        (Shape::Request, Outcome::News(n)) => {
            format!(
                "This letter brought {} in {took}: {bytes} on the wire.",
                events(*n)
            )
        }
        (Shape::HeldRequest, Outcome::News(n)) => format!(
            "The server held this letter {took} until news came: {}, {bytes} on the wire.",
            events(*n)
        ),
        (_, Outcome::Failed(why)) => format!("This letter failed after {took}: {why}."),
        (_, Outcome::Pending) => format!("{} is dialling ({took} so far).", line(span.lane)),
        (_, Outcome::Open) => format!(
            "{} has been open {took}: {} so far, {} down, {} up.",
            line(span.lane),
            events(span.events),
            format_bytes(span.bytes_down as f64),
            format_bytes(span.bytes_up as f64)
        ),
        (Shape::Request | Shape::HeldRequest, Outcome::Closed { reason, .. }) => {
            format!("This letter was withdrawn after {took}: {reason}.")
        }
        (_, Outcome::Closed { code, reason }) => format!(
            "{} hung up after {took} ({}{reason}), having carried {}.",
            line(span.lane),
            code.map(|code| format!("{code} ")).unwrap_or_default(),
            events(span.events)
        ),
        // A line never answers "nothing new", nor brings a batch: it is open or closed.
        (_, Outcome::Empty | Outcome::News(_)) => {
            format!(
                "{}: {}, {bytes} on the wire.",
                line(span.lane),
                events(span.events)
            )
        }
    };
    format!("{what}{cache}")
}

/// A lane's line, as the subject of a sentence.
fn line(lane: LaneId) -> String {
    sentence(named(lane))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;
    use switchboard_shared::Batch;
    use switchboard_shared::ws::Heartbeat;

    #[test]
    fn an_empty_letter_and_a_heartbeat_are_explained_with_their_figures() {
        let mut store = Store::new();
        store.start_after(0);
        let letter = store.new_span();
        store.apply(
            LaneId::Poll,
            1000.0,
            Wire::RequestSent {
                span: letter,
                label: "GET /api/poll?after=0".into(),
            },
        );
        store.apply(
            LaneId::Poll,
            1004.0,
            Wire::ReplyReceived {
                span: letter,
                cached: false,
                bytes_up: 120,
                bytes_down: 138,
                batch: Batch {
                    epoch: 1,
                    head: 0,
                    gap: None,
                    events: vec![],
                    instance: None,
                },
            },
        );
        let span = store.span(letter).unwrap().clone();
        assert_eq!(
            explain_span(&span, 2000.0),
            "This letter came back empty: 258 B on the wire for nothing."
        );

        let line = store.new_span();
        store.apply(
            LaneId::Ws,
            0.0,
            Wire::Dialing {
                span: line,
                label: "GET /ws".into(),
            },
        );
        for at in [2000.0, 4000.0] {
            store.apply(
                LaneId::Ws,
                at,
                Wire::Heartbeat {
                    span: line,
                    heartbeat: Heartbeat {
                        server_ms: at as u64,
                        head: 0,
                    },
                    bytes_down: 20,
                },
            );
        }
        let beat = store
            .marks()
            .iter()
            .rev()
            .find(|mark| matches!(mark.what, MarkKind::Heartbeat { .. }))
            .unwrap()
            .clone();
        assert_eq!(
            explain_mark(&store, &beat),
            "Heartbeat: the server's proof the line is alive, every 2.0 s. Without it a quiet line and a dead one look the same. 20 B on the wire."
        );
    }

    /// The endless letter and the video call are told in their own words, not their shape's.
    #[test]
    fn each_lane_is_explained_in_its_own_words() {
        let mut store = Store::new();
        store.start_after(0);
        for lane in [LaneId::HttpStream, LaneId::WebTransport] {
            let span = store.new_span();
            store.apply(
                lane,
                1_000.0,
                Wire::EventReceived {
                    span,
                    event: crate::store::tests::chat(1, 990, "x"),
                    bytes_down: 50,
                },
            );
        }
        let said = |lane: LaneId| {
            let mark = store
                .marks()
                .iter()
                .find(|mark| mark.lane == lane && matches!(mark.what, MarkKind::Event { .. }))
                .unwrap()
                .clone();
            explain_mark(&store, &mark)
        };
        let stream = said(LaneId::HttpStream);
        assert!(
            stream.contains("written into the endless answer"),
            "{stream}"
        );
        let video = said(LaneId::WebTransport);
        assert!(
            video.contains("the video call's QUIC connection"),
            "{video}"
        );
        assert!(!video.contains("phone"), "{video}");
        assert!(span_kind(LaneId::HttpStream).starts_with("endless letter"));
        assert!(span_kind(LaneId::WebTransport).starts_with("video call"));
        assert!(span_kind(LaneId::Sse).starts_with("radio"));
    }
}
