//! Sequence bookkeeping: which seqs a lane has received, which it missed, which came twice.
//!
//! Every lane client (in the browser, in the load generator, in the tests) runs one [`SeqTracker`]; it is
//! how "delivered", "missed", "duplicated", "recovered" and "lost" are counted the same way everywhere.

use std::collections::BTreeMap;

use crate::{Gap, Seq};

/// What one received seq means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next seq expected (or the first one seen).
    New,
    /// A seq beyond the next expected one: the seqs in between are now missing.
    AfterGap(Gap),
    /// A seq that was missing has arrived after all (a replay after a resume, or a late delivery).
    Recovered,
    /// A seq already delivered: drop it.
    Duplicate,
}

/// Running totals of a tracker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerCounts {
    /// Distinct seqs received (recovered ones included, duplicates not).
    pub delivered: u64,
    /// Receipts of a seq already delivered.
    pub duplicates: u64,
    /// Seqs that were missing and arrived later.
    pub recovered: u64,
    /// Seqs gone for good: declared by the server (a gap notice), or left behind by a restart that
    /// started the seqs over.
    pub lost: u64,
    /// Times the server's history started over (a new epoch) while this tracker was following it.
    pub restarts: u64,
}

/// What a batch's or hello's epoch says about the history being followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochChange {
    /// The first epoch seen.
    First,
    /// The same history as before.
    Same,
    /// The server restarted. When its seqs went on from where they were, what the client missed is told
    /// by the gap notice of its resume and `lost` is 0 here; when they started over, everything the
    /// client had not yet received of the old history is gone, counted in `lost`, and the tracker now
    /// expects the new history from its first seq.
    Restarted { seqs_started_over: bool, lost: u64 },
}

/// Classifies received seqs and remembers the holes.
///
/// Holes are kept as ranges, so a tracker that skipped a million seqs holds one entry, not a million.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// The highest seq seen or declared lost; `None` until the first one, when no resume point is known.
    last: Option<Seq>,
    /// Missing ranges, first seq → last seq (inclusive), disjoint and all below `last`.
    missing: BTreeMap<Seq, Seq>,
    /// The number of seqs in `missing`, kept so it need not be summed.
    missing_count: u64,
    counts: TrackerCounts,
    /// The history being followed, once known.
    epoch: Option<u64>,
    /// The newest seq the server has said exists (in a batch, hello or heartbeat).
    known_head: Seq,
}

impl SeqTracker {
    /// A tracker with no resume point: the first seq it sees is taken as the start.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker for a client that asked for everything after `after`: `after + 1` is expected next, and
    /// anything beyond it leaves a hole.
    pub fn resuming_after(after: Seq) -> Self {
        SeqTracker {
            last: Some(after),
            ..Self::default()
        }
    }

    /// The same place in the same history with every count at zero: for figures that start afresh (a
    /// new period). Keeping the epoch matters: a lane that hears it only in its hello would otherwise
    /// not notice the next restart.
    pub fn counting_afresh(&self) -> Self {
        SeqTracker {
            last: self.last,
            epoch: self.epoch,
            known_head: self.known_head,
            ..Self::default()
        }
    }

    /// Classifies one received seq and updates the counts.
    pub fn observe(&mut self, seq: Seq) -> Arrival {
        let arrival = match self.last {
            None => Arrival::New,
            Some(last) if seq == last + 1 => Arrival::New,
            Some(last) if seq > last => {
                let gap = Gap {
                    first: last + 1,
                    last: seq - 1,
                };
                self.missing.insert(gap.first, gap.last);
                self.missing_count += gap.len();
                Arrival::AfterGap(gap)
            }
            Some(_) => {
                if self.take_missing(seq) {
                    Arrival::Recovered
                } else {
                    Arrival::Duplicate
                }
            }
        };
        match arrival {
            Arrival::Duplicate => self.counts.duplicates += 1,
            Arrival::Recovered => {
                self.counts.recovered += 1;
                self.counts.delivered += 1;
            }
            Arrival::New | Arrival::AfterGap(_) => {
                self.counts.delivered += 1;
                self.last = Some(seq);
            }
        }
        arrival
    }

    /// Records the server's word that the seqs of `gap` are gone for good. Seqs already delivered are
    /// unaffected; missing ones stop being missing and count as lost; ones beyond the highest seen are
    /// counted as lost and skipped. Returns how many seqs were newly counted as lost.
    pub fn declare_lost(&mut self, gap: Gap) -> u64 {
        let mut lost = 0;
        // Cut the gap out of every missing range it overlaps.
        let overlapping: Vec<(Seq, Seq)> = self
            .missing
            .range(..=gap.last)
            .filter(|&(_, &last)| last >= gap.first)
            .map(|(&first, &last)| (first, last))
            .collect();
        for (first, last) in overlapping {
            self.missing.remove(&first);
            if first < gap.first {
                self.missing.insert(first, gap.first - 1);
            }
            if last > gap.last {
                self.missing.insert(gap.last + 1, last);
            }
            lost += last.min(gap.last) - first.max(gap.first) + 1;
        }
        self.missing_count -= lost;
        let beyond_from = match self.last {
            None => Some(gap.first),
            Some(last) if gap.last > last => Some(gap.first.max(last + 1)),
            Some(_) => None,
        };
        if let Some(from) = beyond_from {
            lost += gap.last - from + 1;
            self.last = Some(gap.last);
        }
        self.counts.lost += lost;
        lost
    }

    /// Notes the newest seq the server says exists (a batch's, hello's or heartbeat's `head`).
    pub fn observe_head(&mut self, head: Seq) {
        self.known_head = self.known_head.max(head);
    }

    /// Notes the epoch and head a batch or hello carries, and settles the books when the server's
    /// history started over.
    pub fn observe_epoch(&mut self, epoch: u64, head: Seq) -> EpochChange {
        let change = match self.epoch {
            None => EpochChange::First,
            Some(known) if known == epoch => EpochChange::Same,
            Some(_) => {
                self.counts.restarts += 1;
                match self.last {
                    // Seqs below ours in a new epoch: the counter started over. What we had not received
                    // of the old history (holes, and everything after our last seq up to the head the
                    // server last told us) can never come.
                    Some(last) if head < last => {
                        let lost = self.missing_count + self.known_head.saturating_sub(last);
                        self.missing.clear();
                        self.missing_count = 0;
                        self.counts.lost += lost;
                        self.last = Some(0);
                        self.known_head = head;
                        EpochChange::Restarted {
                            seqs_started_over: true,
                            lost,
                        }
                    }
                    _ => EpochChange::Restarted {
                        seqs_started_over: false,
                        lost: 0,
                    },
                }
            }
        };
        self.epoch = Some(epoch);
        self.observe_head(head);
        change
    }

    /// The highest seq seen or declared lost: the point to resume after.
    pub fn last(&self) -> Option<Seq> {
        self.last
    }

    /// The seqs still missing, as ranges in ascending order.
    pub fn missing(&self) -> impl Iterator<Item = Gap> + '_ {
        self.missing
            .iter()
            .map(|(&first, &last)| Gap { first, last })
    }

    /// How many seqs are still missing.
    pub fn missing_count(&self) -> u64 {
        self.missing_count
    }

    pub fn counts(&self) -> TrackerCounts {
        self.counts
    }

    /// Removes `seq` from the missing ranges; false if it was not missing.
    fn take_missing(&mut self, seq: Seq) -> bool {
        let Some((&first, &last)) = self.missing.range(..=seq).next_back() else {
            return false;
        };
        if last < seq {
            return false;
        }
        self.missing.remove(&first);
        if first < seq {
            self.missing.insert(first, seq - 1);
        }
        if seq < last {
            self.missing.insert(seq + 1, last);
        }
        self.missing_count -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_whose_seqs_go_on_leaves_the_accounting_to_the_gap_notice() {
        let mut tracker = SeqTracker::new();
        assert_eq!(tracker.observe_epoch(1, 10), EpochChange::First);
        for seq in 1..=10 {
            tracker.observe(seq);
        }
        assert_eq!(tracker.observe_epoch(1, 12), EpochChange::Same);
        let change = tracker.observe_epoch(2, 15);
        assert_eq!(
            change,
            EpochChange::Restarted {
                seqs_started_over: false,
                lost: 0
            }
        );
        assert_eq!(
            tracker.declare_lost(Gap {
                first: 11,
                last: 15
            }),
            5
        );
        assert_eq!(tracker.counts().restarts, 1);
        assert_eq!(tracker.counts().lost, 5);
    }

    #[test]
    fn a_restart_that_starts_the_seqs_over_counts_what_never_came() {
        let mut tracker = SeqTracker::new();
        tracker.observe_epoch(1, 0);
        for seq in [1, 2, 3, 5, 6] {
            tracker.observe(seq);
        }
        // The server said it was at 9: 4 is a hole, 7..=9 were never received.
        tracker.observe_head(9);
        let change = tracker.observe_epoch(2, 2);
        assert_eq!(
            change,
            EpochChange::Restarted {
                seqs_started_over: true,
                lost: 4
            }
        );
        assert_eq!(tracker.missing_count(), 0);
        assert_eq!(tracker.last(), Some(0));
        // The new history is followed from its first seq.
        assert_eq!(tracker.observe(1), Arrival::New);
        assert_eq!(tracker.observe(2), Arrival::New);
        assert_eq!(tracker.counts().delivered, 7);
        assert_eq!(tracker.counts().lost, 4);
    }

    fn gaps(tracker: &SeqTracker) -> Vec<(Seq, Seq)> {
        tracker.missing().map(|gap| (gap.first, gap.last)).collect()
    }

    #[test]
    fn in_order_delivery_is_all_new() {
        let mut tracker = SeqTracker::new();
        for seq in 40..50 {
            assert_eq!(tracker.observe(seq), Arrival::New);
        }
        assert_eq!(
            tracker.counts(),
            TrackerCounts {
                delivered: 10,
                ..TrackerCounts::default()
            }
        );
        assert_eq!(tracker.last(), Some(49));
        assert_eq!(tracker.missing_count(), 0);
    }

    #[test]
    fn a_resume_point_makes_the_first_skip_a_gap() {
        let mut tracker = SeqTracker::resuming_after(0);
        assert_eq!(
            tracker.observe(3),
            Arrival::AfterGap(Gap { first: 1, last: 2 })
        );
        assert_eq!(tracker.missing_count(), 2);
    }

    #[test]
    fn duplicates_are_counted_and_not_delivered() {
        let mut tracker = SeqTracker::resuming_after(0);
        tracker.observe(1);
        tracker.observe(2);
        assert_eq!(tracker.observe(2), Arrival::Duplicate);
        assert_eq!(tracker.observe(1), Arrival::Duplicate);
        assert_eq!(tracker.counts().delivered, 2);
        assert_eq!(tracker.counts().duplicates, 2);
    }

    #[test]
    fn holes_fill_from_the_middle_and_the_edges() {
        let mut tracker = SeqTracker::resuming_after(0);
        tracker.observe(1);
        assert_eq!(
            tracker.observe(10),
            Arrival::AfterGap(Gap { first: 2, last: 9 })
        );
        assert_eq!(tracker.observe(5), Arrival::Recovered);
        assert_eq!(gaps(&tracker), vec![(2, 4), (6, 9)]);
        assert_eq!(tracker.observe(2), Arrival::Recovered);
        assert_eq!(tracker.observe(9), Arrival::Recovered);
        assert_eq!(gaps(&tracker), vec![(3, 4), (6, 8)]);
        assert_eq!(tracker.missing_count(), 5);
        assert_eq!(tracker.observe(9), Arrival::Duplicate);
        let counts = tracker.counts();
        assert_eq!(
            (counts.delivered, counts.recovered, counts.duplicates),
            (5, 3, 1)
        );
        assert_eq!(tracker.last(), Some(10));
    }

    #[test]
    fn a_huge_skip_is_one_range() {
        let mut tracker = SeqTracker::resuming_after(0);
        tracker.observe(1);
        tracker.observe(1_000_000_001);
        assert_eq!(tracker.missing_count(), 999_999_999);
        assert_eq!(gaps(&tracker).len(), 1);
    }

    #[test]
    fn declared_losses_beyond_the_last_seq_advance_it() {
        let mut tracker = SeqTracker::resuming_after(5);
        assert_eq!(tracker.declare_lost(Gap { first: 6, last: 10 }), 5);
        assert_eq!(tracker.observe(11), Arrival::New);
        assert_eq!(tracker.counts().lost, 5);
        assert_eq!(tracker.missing_count(), 0);
    }

    #[test]
    fn declared_losses_cut_missing_ranges_and_skip_delivered_seqs() {
        let mut tracker = SeqTracker::resuming_after(0);
        tracker.observe(1);
        tracker.observe(20); // missing 2..=19
        tracker.observe(10); // missing 2..=9, 11..=19
        // The server says 5..=12 are gone: 5..=9 and 11..=12 were missing (7), 10 was delivered.
        assert_eq!(tracker.declare_lost(Gap { first: 5, last: 12 }), 7);
        assert_eq!(gaps(&tracker), vec![(2, 4), (13, 19)]);
        assert_eq!(tracker.missing_count(), 10);
        // Partly beyond the highest seen: 21..=25 are counted, 15..=19 cut.
        assert_eq!(
            tracker.declare_lost(Gap {
                first: 15,
                last: 25
            }),
            10
        );
        assert_eq!(gaps(&tracker), vec![(2, 4), (13, 14)]);
        assert_eq!(tracker.last(), Some(25));
        assert_eq!(tracker.counts().lost, 17);
        // Declaring the same loss twice counts nothing more.
        assert_eq!(tracker.declare_lost(Gap { first: 5, last: 12 }), 0);
    }

    #[test]
    fn a_loss_before_any_seq_sets_the_start() {
        let mut tracker = SeqTracker::new();
        assert_eq!(tracker.declare_lost(Gap { first: 1, last: 3 }), 3);
        assert_eq!(tracker.observe(4), Arrival::New);
    }
}
