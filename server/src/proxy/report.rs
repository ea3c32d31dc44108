//! `GET /api/app`: the app's channels with their figures — kept as the traffic flows
//! ([`super::figures`]) and read by the HAR import's rules — and the findings: what the figures and the
//! lab's faults say about the app, in words that name their figures. Nothing here reads the recording.

use switchboard_shared::app::{AppChannel, AppFaultKind, AppFaultSpan, AppReport, Finding, Got};
use switchboard_shared::format::{format_bytes, format_ms};
use switchboard_shared::har::{Channel, ChannelKind};

use super::AppProxy;
use super::conn::ChannelKey;
use super::lab::Record;
use crate::hub::now_ms_f64;

/// The idle timeout the findings measure heartbeats against: nginx's and most load balancers' are
/// 60 s, many are set lower; 15 s is what `deploy/nginx` ships.
const PROXY_IDLE_MS: f64 = 15_000.0;

pub fn report(proxy: &AppProxy) -> AppReport {
    let now = now_ms_f64();
    let (read, other_requests) = proxy.figures.read(now);
    let open = proxy.open_connections();
    let records = proxy.lab.records();
    let (recorded, dropped) = proxy.recording.counts();
    let mut channels = Vec::new();
    let mut findings = Vec::new();
    for figures in &read {
        let (key, channel) = (&figures.key, &figures.channel);
        let id = key.id.clone();
        let (cut_by_fault, cut_by_idle_timeout) = proxy.lab.cuts(&id);
        let open_now: Vec<_> = open
            .iter()
            .filter(|conn| conn.key().is_some_and(|key| key.id == id) && !conn.cut.is_cancelled())
            .collect();
        let dead = open_now.iter().filter(|conn| conn.is_half_open()).count() as u64;
        let open_now = open_now.len() as u64;
        findings.extend(channel_findings(channel, key, now));
        if figures.got.starved(now) {
            findings.push(starved(key, channel, &figures.got, now));
        }
        channels.push(AppChannel {
            id: id.clone(),
            kind: channel.kind,
            method: key.method.clone(),
            path: key.path.clone(),
            name: channel.name.clone(),
            requests: channel.requests,
            empty_answers: channel.empty,
            bytes_up: channel.bytes_up,
            bytes_down: channel.bytes_down,
            messages: channel.frames,
            open: open_now,
            dead,
            got: figures.got,
            reconnects: channel.reconnects,
            heartbeat_ms: channel.heartbeat_ms,
            longest_silence_ms: figures.longest_silence_ms,
            cut_by_fault,
            cut_by_idle_timeout,
            verdict: channel.verdict(),
        });
    }
    let channels_read: Vec<(ChannelKey, Channel)> = read
        .into_iter()
        .map(|figures| (figures.key, figures.channel))
        .collect();
    for record in &records {
        findings.extend(fault_findings(record, &channels_read, now));
    }
    let upstream_state = proxy.upstream_state();
    if let Some(Some(why)) = &upstream_state {
        findings.insert(
            0,
            Finding {
                channel: None,
                text: format!("Your app did not answer the proxy: {why}."),
            },
        );
    }
    AppReport {
        upstream: proxy.upstream.url.clone(),
        proxy_url: proxy.proxy_url(),
        upstream_up: upstream_state.as_ref().map(Option::is_none),
        upstream_error: upstream_state.flatten(),
        channels,
        findings,
        faults: proxy.lab.faults(),
        networks: proxy.lab.networks(),
        history: records
            .iter()
            .map(|record| AppFaultSpan {
                kind: record.kind,
                channel: record.channel.clone().unwrap_or_else(|| "all".into()),
                started_ms: record.started_ms,
                ended_ms: record.ended_ms,
            })
            .collect(),
        cuts: proxy.lab.cut_log(),
        network_history: proxy.lab.network_log(),
        recorded,
        dropped,
        other_requests,
    }
}

/// The most important thing the lab can say: the app keeps sending, and the browser gets nothing.
fn starved(key: &ChannelKey, channel: &Channel, got: &Got, now: f64) -> Finding {
    let since = got.undelivered_since_ms.unwrap_or(now);
    let why = if got.withheld > 0 && got.lost == 0 {
        " (a half-open holds them)"
    } else {
        ""
    };
    Finding {
        channel: Some(key.id.clone()),
        text: format!(
            "In the last {}, your app sent {} message{} on your {}; the browser got none of them{why}.",
            format_ms(now - since),
            got.undelivered,
            if got.undelivered == 1 { "" } else { "s" },
            key.called(channel.kind),
        ),
    }
}

/// What a channel's recording says on its own: its heartbeat against a proxy's idle timeout, its
/// letters' empty answers.
fn channel_findings(channel: &Channel, key: &ChannelKey, now: f64) -> Vec<Finding> {
    let mut findings = Vec::new();
    let say = |text: String| Finding {
        channel: Some(key.id.clone()),
        text,
    };
    let name = key.called(channel.kind);
    let your = format!("Your {name}");
    match channel.kind {
        ChannelKind::Radio | ChannelKind::Phone => match channel.heartbeat_ms {
            Some(every) if every > PROXY_IDLE_MS => findings.push(say(format!(
                "{your} heartbeats every {}. A proxy with a {} idle timeout would hang up on it between heartbeats.",
                format_ms(every),
                format_ms(PROXY_IDLE_MS)
            ))),
            Some(every) => findings.push(say(format!(
                "{your} heartbeats every {}: a quiet line survives a proxy's {} idle timeout, and a dead one can be told within {}.",
                format_ms(every),
                format_ms(PROXY_IDLE_MS),
                format_ms(2.5 * every)
            ))),
            None if channel.end_ms.min(now) - channel.start_ms > PROXY_IDLE_MS => {
                findings.push(say(format!(
                    "{your} showed no heartbeat in {}: a quiet line and a dead one look the same, and a proxy's idle timeout would cut it in a quiet spell.",
                    format_ms(channel.end_ms.min(now) - channel.start_ms)
                )))
            }
            None => {}
        },
        ChannelKind::Letters if channel.requests >= 5 && channel.empty > 0 => {
            let total = channel.bytes_up + channel.bytes_down;
            findings.push(say(format!(
                "{your} came back unchanged {:.0} % of the time ({} of {}): a stream would carry the same news in ≈ {} instead of {}.",
                100.0 * channel.empty as f64 / channel.requests as f64,
                channel.empty,
                channel.requests,
                format_bytes(channel.stream_estimate() as f64),
                format_bytes(total as f64)
            )));
        }
        ChannelKind::Letters | ChannelKind::Held => {}
    }
    findings
}

/// What one fault did to the app: when it noticed, when it redialed, what was cut.
fn fault_findings(record: &Record, channels: &[(ChannelKey, Channel)], now: f64) -> Vec<Finding> {
    let name_of = |id: &str| {
        channels
            .iter()
            .find(|(key, _)| key.id == id)
            .map(|(key, channel)| key.called(channel.kind))
    };
    let lasted = record
        .duration_ms
        .map(|ms| format!("{} ", format_ms(ms as f64)))
        .unwrap_or_default();
    let mut findings = Vec::new();
    for id in &record.affected {
        // Only what the page shows: the page itself and one-off requests are no channel.
        let Some(name) = name_of(id) else { continue };
        let your = format!("your {name}");
        let cuts = record.cuts.get(id).copied().unwrap_or(0);
        let noticed = record.noticed.get(id).map(|at| at - record.started_ms);
        let redialed = record.redialed.get(id).map(|at| at - record.started_ms);
        let ended = record.ended_ms.map(|at| at - record.started_ms);
        let text = match record.kind {
            AppFaultKind::HalfOpen => match noticed {
                Some(after) if ended.is_some_and(|end| after > end) => format!(
                    "During the {lasted}half-open, {your} noticed after {} (it redialed only after the fault ended).",
                    format_ms(after)
                ),
                Some(after) => format!(
                    "During the {lasted}half-open, {your} noticed after {}{}.",
                    format_ms(after),
                    redialed.map_or(String::new(), |r| format!(
                        " and redialed after {}",
                        format_ms(r)
                    ))
                ),
                None => format!(
                    "During the {lasted}half-open, {your} has not noticed yet ({} since it began): its socket still looks open to it.",
                    format_ms(now - record.started_ms)
                ),
            },
            AppFaultKind::Drop => match redialed {
                Some(after) => format!("After the drop, {your} redialed in {}.", format_ms(after)),
                None => format!(
                    "After the drop, {your} has not redialed ({} since).",
                    format_ms(now - record.started_ms)
                ),
            },
            AppFaultKind::IdleTimeout => format!(
                "The proxy's {} idle timeout cut {your} {} time{}{}.",
                format_ms(record.idle_ms.unwrap_or(0) as f64),
                cuts,
                if cuts == 1 { "" } else { "s" },
                match channels
                    .iter()
                    .find(|(key, _)| key.id == *id)
                    .map(|(_, c)| (c.kind, c.heartbeat_ms))
                {
                    Some((ChannelKind::Held | ChannelKind::Letters, _)) => {
                        ": a letter held longer than that, or a kept-alive connection quiet that long, is hung up on"
                            .to_owned()
                    }
                    Some((_, Some(every))) if every > record.idle_ms.unwrap_or(0) as f64 =>
                        format!(
                            ": its heartbeats (every {}) come too rarely to keep it open",
                            format_ms(every)
                        ),
                    Some((_, Some(every))) => {
                        format!(" although it heartbeats every {}", format_ms(every))
                    }
                    _ => ": it sends no heartbeat to keep a quiet line open".to_owned(),
                }
            ),
            AppFaultKind::NoHeartbeat => match noticed {
                Some(after) => format!(
                    "With its heartbeats swallowed ({} of them), {your} gave up on the line after {}.",
                    record.swallowed,
                    format_ms(after)
                ),
                None => format!(
                    "With its heartbeats swallowed ({} of them), {your} did not notice: it keeps a line it cannot know is alive.",
                    record.swallowed
                ),
            },
            _ => continue,
        };
        findings.push(Finding {
            channel: Some(id.clone()),
            text,
        });
    }
    findings
}
