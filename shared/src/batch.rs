//! What the letters lanes (`/api/poll`, `/api/longpoll`) answer.

use serde::{Deserialize, Serialize};

use crate::{Event, Seq};

/// A batch of events with `seq > after`, oldest first.
///
/// On the wire: `{"epoch":1700000000000,"head":42,"gap":null,"events":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Identifies the server's history: it changes when the history starts anew (a restart), which tells
    /// a client that sequence numbers from before mean nothing any more.
    pub epoch: u64,
    /// The newest seq the server had published when it answered (0 before the first event). A client
    /// that got no events keeps asking after the seq it already had.
    pub head: Seq,
    /// Seqs the client asked for that the server no longer holds; `None` when nothing was lost.
    pub gap: Option<Gap>,
    /// The events after the asked-for seq (and after the gap), oldest first; possibly empty.
    pub events: Vec<Event>,
    /// The instance that answered, when the server runs as one of several sharing a stream (`--redis`):
    /// a letter may reach any of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Batch {
    /// The seq a client should ask after next: its last event, else the end of the gap, else `after`.
    pub fn next_after(&self, after: Seq) -> Seq {
        self.events
            .last()
            .map(|event| event.seq)
            .or(self.gap.map(|gap| gap.last))
            .unwrap_or(after)
            .max(after)
    }
}

/// An explicit notice that a range of seqs is gone: the server's bounded history no longer holds them, so
/// a client resuming from before them learns exactly what it lost instead of seeing a silent hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The first lost seq.
    pub first: Seq,
    /// The last lost seq (inclusive).
    pub last: Seq,
}

impl Gap {
    /// How many seqs were lost.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// A gap always holds at least one seq.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, seq: Seq) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::samples;

    #[test]
    fn batch_round_trips_and_keeps_its_shape() {
        let batch = Batch {
            epoch: 9,
            head: 3,
            gap: Some(Gap { first: 1, last: 1 }),
            events: samples()[1..3].to_vec(),
            instance: None,
        };
        let json = serde_json::to_string(&batch).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), batch);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["gap"]["first"], 1);
        assert_eq!(value["events"][0]["seq"], 2);
    }

    #[test]
    fn next_after_follows_events_then_gap_then_the_question() {
        let events = samples()[1..3].to_vec();
        let with_events = Batch {
            epoch: 1,
            head: 3,
            gap: None,
            events,
            instance: None,
        };
        assert_eq!(with_events.next_after(0), 3);
        let only_gap = Batch {
            epoch: 1,
            head: 9,
            gap: Some(Gap { first: 1, last: 4 }),
            events: vec![],
            instance: None,
        };
        assert_eq!(only_gap.next_after(0), 4);
        let empty = Batch {
            epoch: 1,
            head: 7,
            gap: None,
            events: vec![],
            instance: None,
        };
        assert_eq!(empty.next_after(7), 7);
    }

    #[test]
    fn gap_counts_inclusively() {
        let gap = Gap { first: 5, last: 9 };
        assert_eq!(gap.len(), 5);
        assert!(gap.contains(5) && gap.contains(9) && !gap.contains(10) && !gap.contains(4));
    }
}
