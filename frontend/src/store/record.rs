//! What the export writes down: every exchange and line, and what crossed the wire on each as it came
//! or went (a letter's answer body, a line's frames, the radio's event blocks), in a bounded log of its
//! own. The timeline's marks are for drawing — thinned, capped at a number of marks, rebuilt for the
//! detail view — and an export made from them wrote letters whose events had fallen off as empty.
//!
//! Bounded by the text it holds and by the exchanges it holds: the oldest go first, and from then on
//! the log says from when it is whole ([`Recording::whole_since_ms`]), so the file can say what span it
//! covers instead of writing a letter without its answer.

use std::collections::VecDeque;

use super::timeline::Span;
use crate::wire::SpanId;

/// Text kept, at most (answer bodies and frames): a few minutes of firehose on every lane.
pub const TEXT_HELD: usize = 8 * 1024 * 1024;
/// Exchanges and lines kept, at most.
pub const EXCHANGES_HELD: usize = 20_000;

/// One thing that crossed the wire on an exchange or a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub span: SpanId,
    pub at_ms: f64,
    /// Browser → server.
    pub up: bool,
    pub text: String,
}

/// The export's log: exchanges (as the timeline knows them, kept after the timeline lets them go) and
/// what each carried.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// In id order, as spans begin.
    exchanges: VecDeque<Span>,
    /// In time order.
    carried: VecDeque<Carried>,
    text_held: usize,
    /// Since when nothing was let go (`None`: the whole session is kept).
    whole_since_ms: Option<f64>,
    dropped_exchanges: u64,
    dropped_messages: u64,
}

impl Recording {
    /// A span began, or changed (answered, opened, closed, counted more bytes): keeps its latest form.
    pub fn span(&mut self, span: &Span) {
        match self.find(span.id) {
            Some(index) => self.exchanges[index].clone_from(span),
            None if self.exchanges.back().is_none_or(|last| last.id < span.id) => {
                self.exchanges.push_back(span.clone());
                if self.exchanges.len() > EXCHANGES_HELD {
                    self.let_go_of_oldest_exchange();
                }
            }
            // An exchange already let go of, heard of again: it stays gone.
            None => {}
        }
    }

    /// Something crossed the wire on `span`.
    pub fn carried(&mut self, carried: Carried) {
        if self.find(carried.span).is_none() {
            return;
        }
        self.text_held += carried.text.len();
        self.carried.push_back(carried);
        while self.text_held > TEXT_HELD {
            let Some(oldest) = self.carried.pop_front() else {
                break;
            };
            self.text_held -= oldest.text.len();
            self.dropped_messages += 1;
            self.whole_since(oldest.at_ms);
        }
        // A letter whose answer was let go of cannot be written true: it goes too. (Lines that began
        // before stay: what they carried since is whole, and the file says from when.)
        let since = self.whole_since_ms.unwrap_or(f64::NEG_INFINITY);
        let mut index = 0;
        while let Some(span) = self.exchanges.get(index)
            && span.start_ms < since
        {
            if span.shape.is_request() {
                self.exchanges.remove(index);
                self.dropped_exchanges += 1;
            } else {
                index += 1;
            }
        }
    }

    /// Every exchange kept, in the order they began.
    pub fn exchanges(&self) -> impl Iterator<Item = &Span> {
        self.exchanges.iter()
    }

    /// Everything kept that crossed the wire, in time order.
    pub fn messages(&self) -> impl Iterator<Item = &Carried> {
        self.carried.iter()
    }

    /// Since when the log is whole; `None` when nothing was ever let go.
    pub fn whole_since_ms(&self) -> Option<f64> {
        self.whole_since_ms
    }

    /// Exchanges and messages let go of to stay bounded.
    pub fn dropped(&self) -> (u64, u64) {
        (self.dropped_exchanges, self.dropped_messages)
    }

    fn find(&self, id: SpanId) -> Option<usize> {
        // Spans are kept in id order, so a binary search finds one.
        let index = self.exchanges.partition_point(|span| span.id < id);
        self.exchanges.get(index).filter(|span| span.id == id)?;
        Some(index)
    }

    fn whole_since(&mut self, at_ms: f64) {
        self.whole_since_ms = Some(self.whole_since_ms.map_or(at_ms, |since| since.max(at_ms)));
    }

    /// The oldest exchange goes; an open line is kept (it is still being
    /// written), the oldest other one goes instead.
    fn let_go_of_oldest_exchange(&mut self) {
        let index = self
            .exchanges
            .iter()
            .position(|span| span.end_ms.is_some() || span.shape.is_request())
            .unwrap_or(0);
        let Some(gone) = self.exchanges.remove(index) else {
            return;
        };
        self.dropped_exchanges += 1;
        // What it carried stays until the text bound lets it go (the export skips it): looking for it
        // among every message kept would cost a scan per exchange.
        self.whole_since(gone.end_ms.unwrap_or(gone.start_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Outcome;
    use switchboard_shared::LaneId;

    fn letter(id: SpanId, at: f64) -> Span {
        Span {
            id,
            lane: LaneId::Poll,
            shape: LaneId::Poll.shape(),
            label: format!("GET /api/poll?after={id}"),
            start_ms: at,
            end_ms: Some(at + 5.0),
            outcome: Outcome::News(1),
            bytes_up: 100,
            bytes_down: 200,
            events: 1,
            cached: false,
        }
    }

    #[test]
    fn a_letter_whose_answer_was_let_go_of_goes_with_it_and_the_log_says_since_when_it_is_whole() {
        let mut recording = Recording::default();
        let big = "x".repeat(TEXT_HELD / 3);
        for id in 1..=4 {
            let at = id as f64 * 1_000.0;
            recording.span(&letter(id, at));
            recording.carried(Carried {
                span: id,
                at_ms: at + 5.0,
                up: false,
                text: big.clone(),
            });
        }
        // Three answers fit; the first one's went, and its letter with it.
        let kept: Vec<SpanId> = recording.exchanges().map(|span| span.id).collect();
        assert_eq!(kept, vec![2, 3, 4]);
        assert_eq!(recording.messages().count(), 3);
        assert_eq!(recording.whole_since_ms(), Some(1_005.0));
        assert_eq!(recording.dropped(), (1, 1));
    }

    #[test]
    fn an_open_line_outlives_the_letters_around_it_and_keeps_its_latest_form() {
        let mut recording = Recording::default();
        let mut line = letter(1, 0.0);
        line.lane = LaneId::Ws;
        line.shape = LaneId::Ws.shape();
        line.end_ms = None;
        recording.span(&line);
        for id in 2..(EXCHANGES_HELD as u64 + 10) {
            recording.span(&letter(id, id as f64));
        }
        assert_eq!(recording.exchanges().next().map(|span| span.id), Some(1));
        assert_eq!(recording.exchanges().count(), EXCHANGES_HELD);
        line.bytes_down = 9_999;
        recording.span(&line);
        assert_eq!(recording.exchanges().next().unwrap().bytes_down, 9_999);
        // A message on a letter let go of is not kept.
        recording.carried(Carried {
            span: 2,
            at_ms: 1.0,
            up: false,
            text: "{}".into(),
        });
        assert_eq!(recording.messages().count(), 0);
    }
}
