//! Each lane's own copy of the live data (host load, ticker, chat), so a stale lane *looks* stale, and
//! how far behind the freshest news each copy is.

use std::collections::{BTreeMap, VecDeque};

use switchboard_shared::{ChatMessage, Event, EventBody, HostLoad, Notice, Quote, Seq};

/// Chat lines each lane's copy shows.
const CHAT_KEPT: usize = 5;
/// Recently published seqs remembered to tell how far behind a lane is.
const RECENT_KEPT: usize = 4_096;

/// Each lane's own copy of the live data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveCopy {
    pub load: Option<HostLoad>,
    pub quotes: BTreeMap<String, Quote>,
    pub chat: VecDeque<ChatMessage>,
    pub notice: Option<Notice>,
    /// The server timestamp of the newest event this copy shows.
    pub newest_ts_ms: Option<u64>,
}

impl LiveCopy {
    pub(super) fn show(&mut self, event: &Event) {
        if self.newest_ts_ms.is_some_and(|ts| ts > event.ts_ms) {
            // A replayed older event must not overwrite newer data.
            return;
        }
        self.newest_ts_ms = Some(event.ts_ms);
        match &event.body {
            EventBody::Load(load) => self.load = Some(load.clone()),
            EventBody::Ticker(ticker) => {
                for quote in &ticker.quotes {
                    self.quotes.insert(quote.symbol.clone(), quote.clone());
                }
            }
            EventBody::Chat(message) => {
                self.chat.push_back(message.clone());
                if self.chat.len() > CHAT_KEPT {
                    self.chat.pop_front();
                }
            }
            EventBody::Notice(notice) => self.notice = Some(notice.clone()),
        }
    }
}

/// The seqs seen on any lane with their server timestamps, so a lane's copy can be aged against the
/// freshest news another lane already has.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// (seq, server timestamp), ascending by seq.
    recent: VecDeque<(Seq, u64)>,
}

impl Published {
    pub fn remember(&mut self, seq: Seq, ts_ms: u64) {
        let index = self.recent.partition_point(|&(known, _)| known < seq);
        if self
            .recent
            .get(index)
            .is_some_and(|&(known, _)| known == seq)
        {
            return;
        }
        self.recent.insert(index, (seq, ts_ms));
        if self.recent.len() > RECENT_KEPT {
            self.recent.pop_front();
        }
    }

    /// The age, on the server's clock `server_now_ms`, of the oldest event after `last`: how long a copy
    /// that has everything up to `last` has been missing news. Zero when nothing newer is known.
    pub fn behind_ms(&self, last: Seq, server_now_ms: f64) -> f64 {
        let index = self.recent.partition_point(|&(seq, _)| seq <= last);
        match self.recent.get(index) {
            Some(&(_, ts_ms)) => (server_now_ms - ts_ms as f64).max(0.0),
            None => 0.0,
        }
    }
}
