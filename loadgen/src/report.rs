//! The load generator's report: a human summary and the same figures as JSON.

use serde::Serialize;
use std::fmt;
use switchboard_shared::stats::Summary;
use switchboard_shared::{LaneId, ServerStats};

use crate::{ClientRecord, LoadConfig};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub lane: LaneId,
    /// The emulated network the lane ran over (`None`: loopback).
    pub network: Option<String>,
    pub clients: usize,
    /// Clients that connected (streams) or got a first answer (polls).
    pub connected: u64,
    pub ramp_secs: f64,
    pub window_secs: f64,
    /// Distinct events delivered per second across all clients, over the measuring window.
    pub deliveries_per_sec: f64,
    pub delivered: u64,
    /// Seqs a client saw skipped and never received.
    pub missed: u64,
    /// Seqs the server declared gone (gap notices).
    pub lost: u64,
    pub duplicates: u64,
    pub errors: u64,
    /// Payload bytes received by the clients (bodies, SSE data, WebSocket text).
    pub payload_bytes: u64,
    /// Publish-to-receipt delay, ms.
    pub delay_ms: Option<Summary>,
    pub server: ServerSide,
    /// CPU use of the load generator itself, percent of one core: on a shared machine, whatever it
    /// takes the server cannot have, and a load generator near a full core measures its own queueing.
    pub load_generator_cpu_percent: Option<f64>,
    /// Requests (streams: connections) the clients made over the whole run, ramp included; behind a
    /// proxy or cache, compare with what the instances counted.
    pub client_requests: u64,
    /// Requests the server counted on the lane per event a client received (streams: ~0).
    pub requests_per_delivery: Option<f64>,
    /// Bytes on the wire (both ways, headers and framing included) per event a client received.
    pub wire_bytes_per_delivery: Option<f64>,
    /// Anything that limited the run (an open-file limit, say).
    pub notes: Vec<String>,
}

/// The server's side of the measuring window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerSide {
    pub events_published_per_sec: Option<f64>,
    pub requests_per_sec: Option<f64>,
    /// Bytes on the wire for this lane, headers and framing included, from the server's own meters.
    pub wire_bytes_out_per_sec: Option<f64>,
    pub wire_bytes_in_per_sec: Option<f64>,
    /// CPU use of the server process, percent of one core.
    pub cpu_percent: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
}

impl ServerSide {
    pub fn new(
        lane: LaneId,
        stats: Option<(&ServerStats, &ServerStats)>,
        cpu_percent: Option<f64>,
        peak_rss_bytes: Option<u64>,
        window_secs: f64,
    ) -> ServerSide {
        let mut side = ServerSide {
            cpu_percent,
            peak_rss_bytes,
            ..ServerSide::default()
        };
        if let Some((before, after)) = stats {
            let rate = |delta: u64| Some(delta as f64 / window_secs);
            let (b, a) = (before.lanes[&lane], after.lanes[&lane]);
            side.events_published_per_sec = rate(after.head - before.head);
            side.requests_per_sec = rate(a.requests - b.requests);
            side.wire_bytes_out_per_sec = rate(a.bytes_out - b.bytes_out);
            side.wire_bytes_in_per_sec = rate(a.bytes_in - b.bytes_in);
        }
        side
    }
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &LoadConfig,
        records: Vec<ClientRecord>,
        connected: u64,
        ramp_secs: f64,
        window_secs: f64,
        delivered_in_window: u64,
        server: ServerSide,
        notes: Vec<String>,
    ) -> Report {
        let mut delays: Vec<f64> = Vec::new();
        let (mut delivered, mut missed, mut lost, mut duplicates, mut errors, mut bytes) =
            (0, 0, 0, 0, 0, 0);
        let mut client_requests = 0;
        for record in records {
            let counts = record.tracker.counts();
            delivered += counts.delivered;
            duplicates += counts.duplicates;
            lost += counts.lost;
            missed += record.tracker.missing_count();
            errors += record.errors;
            bytes += record.bytes;
            client_requests += record.requests;
            delays.extend(record.delays_ms.iter().map(|&delay| f64::from(delay)));
        }
        let per_delivery = |per_sec: Option<f64>| {
            let deliveries = delivered_in_window as f64 / window_secs.max(0.001);
            per_sec
                .filter(|_| deliveries > 0.0)
                .map(|rate| rate / deliveries)
        };
        let requests_per_delivery = per_delivery(server.requests_per_sec);
        let wire_bytes_per_delivery = per_delivery(
            server
                .wire_bytes_out_per_sec
                .zip(server.wire_bytes_in_per_sec)
                .map(|(out, into)| out + into),
        );
        Report {
            lane: config.lane,
            network: config.network.clone(),
            requests_per_delivery,
            wire_bytes_per_delivery,
            client_requests,
            clients: config.clients,
            connected,
            ramp_secs,
            window_secs,
            deliveries_per_sec: delivered_in_window as f64 / window_secs.max(0.001),
            delivered,
            missed,
            lost,
            duplicates,
            errors,
            payload_bytes: bytes,
            delay_ms: Summary::of(&mut delays),
            server,
            load_generator_cpu_percent: None,
            notes,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |value: Option<f64>, unit: &str| {
            value.map_or("n/a".to_owned(), |v| format!("{v:.1}{unit}"))
        };
        writeln!(
            f,
            "lane {} · {} clients ({} connected) · network {} · ramp {:.1} s · window {:.1} s",
            self.lane,
            self.clients,
            self.connected,
            self.network.as_deref().unwrap_or("loopback"),
            self.ramp_secs,
            self.window_secs
        )?;
        writeln!(
            f,
            "  deliveries      {:.0}/s ({} in all)",
            self.deliveries_per_sec, self.delivered
        )?;
        match &self.delay_ms {
            Some(d) => writeln!(
                f,
                "  delay (ms)      p50 {:.1} · p95 {:.1} · p99 {:.1} · max {:.1}",
                d.p50, d.p95, d.p99, d.max
            )?,
            None => writeln!(f, "  delay (ms)      no events delivered")?,
        }
        writeln!(
            f,
            "  seqs            {} missed · {} lost (gap notices) · {} duplicates · {} errors",
            self.missed, self.lost, self.duplicates, self.errors
        )?;
        writeln!(
            f,
            "  payload         {} bytes received · {} requests made by the clients",
            self.payload_bytes, self.client_requests
        )?;
        writeln!(
            f,
            "  per delivery    {} requests · {} on the wire",
            self.requests_per_delivery
                .map_or("n/a".to_owned(), |r| format!("{r:.3}")),
            opt(self.wire_bytes_per_delivery, " B")
        )?;
        let s = &self.server;
        writeln!(
            f,
            "  server          {} events/s published · {} requests/s · {} out · {} in (wire, this lane)",
            opt(s.events_published_per_sec, ""),
            opt(s.requests_per_sec, ""),
            opt(s.wire_bytes_out_per_sec, " B/s"),
            opt(s.wire_bytes_in_per_sec, " B/s")
        )?;
        writeln!(
            f,
            "  server process  CPU {} · peak RSS {}",
            opt(s.cpu_percent, "%"),
            s.peak_rss_bytes.map_or("n/a".to_owned(), |rss| format!(
                "{:.1} MiB",
                rss as f64 / 1_048_576.0
            ))
        )?;
        writeln!(
            f,
            "  load generator  CPU {}",
            opt(self.load_generator_cpu_percent, "%")
        )?;
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}
