//! `GET /api/app`: the app's channels with their figures — kept as the traffic flows
//! ([`super::figures`]) and read by the HAR import's rules — and the findings: what the figures and the
//! lab's faults say about the app, in words that name their figures. Nothing here reads the recording.

use std::collections::HashMap;
use switchboard_shared::app::experiment::{Experiment, ExperimentState, Told};
use switchboard_shared::app::route::uploads_belong;
use switchboard_shared::app::{AppChannel, AppReport, Finding, Got};
use switchboard_shared::format::{format_bytes, format_ms};
use switchboard_shared::har::{Channel, ChannelKind};
use switchboard_shared::stats::group_thousands;

use super::AppProxy;
use super::conn::ChannelKey;
use crate::hub::now_ms_f64;

/// A request waits this long with no answer before the report tells of it: a long poll is held 20–60 s,
/// an API call answers in well under this.
pub const WAITING_MS: u64 = 5_000;

/// Requests waiting for their answer on a channel the table does not list yet. A channel of letters is
/// one once three have ended (the loop's rule): an app whose long poll is held 30 s showed nothing for a
/// minute and more, with its requests in flight all along.
fn waiting_letters(
    proxy: &AppProxy,
    open: &[std::sync::Arc<super::conn::Conn>],
    read: &[super::figures::Read],
    now: f64,
) -> Vec<Finding> {
    // By channel: its key, how many wait, the longest wait (ms).
    let mut waiting: Vec<(ChannelKey, u64, u64)> = Vec::new();
    for conn in open {
        let wait = conn.silent_for_ms();
        // A letter in flight (a socket or a stream that began is a line, not a letter), silent since
        // it was asked; one the lab holds (a half-open) is the experiment's to tell. (Its key is read,
        // a copy, only for one: every socket of a busy app is open here.)
        if conn.asking.load(std::sync::atomic::Ordering::Relaxed) == 0
            || conn.upgraded.load(std::sync::atomic::Ordering::Relaxed)
            || conn.is_half_open()
            || conn.cut.is_cancelled()
            || conn.abandoned()
            || wait < WAITING_MS
        {
            continue;
        }
        let Some(key) = conn.key() else { continue };
        if read.iter().any(|listed| listed.key.id == key.id) {
            continue;
        }
        match waiting.iter_mut().find(|(known, ..)| known.id == key.id) {
            Some((_, n, longest)) => {
                *n += 1;
                *longest = (*longest).max(wait);
            }
            None => waiting.push((key, 1, wait)),
        }
    }
    let timeout = format_ms(proxy.settings.upstream_timeout.as_secs_f64() * 1000.0);
    waiting
        .into_iter()
        .map(|(key, n, longest)| Finding {
            text: format!(
                "Waiting: {} has {} in flight, silent for {} so far: held letters (long polling) \
                 if your app answers late, or an app that does not answer (with no answer's head in \
                 {timeout}, the proxy answers 504). Letters are a channel in the table once three have \
                 ended.",
                key.name,
                if n == 1 {
                    "1 request".to_owned()
                } else {
                    format!("{n} requests")
                },
                format_ms(longest as f64),
            ),
            channel: Some(key.id),
            at_ms: Some(now - longest as f64),
        })
        .collect()
}

/// The idle timeout the findings measure heartbeats against: nginx's and most load balancers' are
/// 60 s, many are set lower; 15 s is what `deploy/nginx` ships.
const PROXY_IDLE_MS: f64 = 15_000.0;

pub fn report(proxy: &AppProxy) -> AppReport {
    let now = now_ms_f64();
    let (read, other_requests) = proxy.figures.read(now);
    let asides = proxy.figures.asides();
    let uploads = proxy.figures.uploads();
    let open = proxy.open_connections();
    let (recorded, dropped) = proxy.recording.counts();
    // The lines open now, by channel: how many, and how many of them dead. Connections both ends have
    // given up on are only closing (a dead line's closing handshake waits out its timeout, up to a
    // minute): counted, they read as lines still wedged. A kept-alive one between two letters carries
    // nothing of the channel. (Counted in one pass: asked of every connection for every channel, the
    // keys' copies were most of what the report cost — 150 sockets on 150 channels, 22,500 copies.)
    let mut lines: HashMap<String, (u64, u64)> = HashMap::new();
    for conn in &open {
        if !conn.carrying() || conn.cut.is_cancelled() || conn.abandoned() {
            continue;
        }
        if let Some(id) = conn.channel_id() {
            let (open_now, dead) = lines.entry(id).or_default();
            *open_now += 1;
            *dead += u64::from(conn.is_half_open());
        }
    }
    let mut channels = Vec::new();
    let mut findings = Vec::new();
    for figures in &read {
        let (key, channel) = (&figures.key, &figures.channel);
        let id = key.id.clone();
        let (cut_by_fault, cut_by_idle_timeout) = proxy.lab.cuts(&id);
        let (open_now, dead) = lines.get(&id).copied().unwrap_or_default();
        findings.extend(channel_findings(channel, key, now));
        if figures.got.starved(now) {
            findings.push(starved(key, channel, &figures.got, now));
        }
        // What its session sent up besides its own requests: how many, and their bytes. (A socket
        // sends up on itself: Engine.IO's POSTs share its upgrade's path but are its polling's.)
        let session_uploads = uploads
            .iter()
            .filter(|_| channel.kind != ChannelKind::Phone)
            .filter(|(upload, ..)| uploads_belong(&upload.path, &key.method, &key.path))
            .fold((0, 0), |(n, bytes), (_, more, more_bytes)| {
                (n + more, bytes + more_bytes)
            });
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
            clients: channel.clients,
            uploads: session_uploads.0,
            upload_bytes: session_uploads.1,
            heartbeat_ms: channel.heartbeat_ms,
            longest_silence_ms: figures.longest_silence_ms,
            cut_by_fault,
            cut_by_idle_timeout,
            verdict: channel.verdict(),
        });
    }
    findings.extend(waiting_letters(proxy, &open, &read, now));
    if let Some(finding) = aside_finding(asides) {
        findings.push(finding);
    }
    let channels_read: Vec<(ChannelKey, Channel)> = read
        .into_iter()
        .map(|figures| (figures.key, figures.channel))
        .collect();
    let experiments = proxy
        .lab
        .experiments()
        .into_iter()
        .map(|(experiment, frozen)| {
            let mut experiment =
                experiment_findings(proxy, experiment, frozen, &channels_read, now);
            experiment
                .findings
                .extend(proxy.lab.verdicts(experiment.id));
            experiment
        })
        .collect();
    if let Some(scenario) = proxy
        .scenario
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        findings.insert(0, scenario);
    }
    let upstream_state = proxy.upstream_state();
    if let Some(Some(why)) = &upstream_state {
        findings.insert(
            0,
            Finding {
                channel: None,
                text: format!("Your app did not answer the proxy: {why}."),
                at_ms: Some(now),
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
        experiments,
        faults: proxy.lab.faults(),
        networks: proxy.lab.networks(),
        history: proxy.lab.history(),
        cuts: proxy.lab.cut_log(),
        network_history: proxy.lab.network_log(),
        recorded,
        dropped,
        other_requests,
    }
}

/// What went through the proxy aside from the channels, in one sentence (none when nothing did).
fn aside_finding(asides: [(u64, u64); 3]) -> Option<Finding> {
    let [
        (files, file_bytes),
        (handshakes, _),
        (uploads, upload_bytes),
    ] = asides;
    let mut parts = Vec::new();
    if files > 0 {
        parts.push(format!(
            "your page ({} file{}, {})",
            group_thousands(files),
            if files == 1 { "" } else { "s" },
            format_bytes(file_bytes as f64)
        ));
    }
    if handshakes > 0 {
        parts.push(format!(
            "{} handshake{} (a framework's open or /info)",
            group_thousands(handshakes),
            if handshakes == 1 { "" } else { "s" }
        ));
    }
    if uploads > 0 {
        parts.push(format!(
            "{} upload{} of long-polling or streaming sessions ({})",
            group_thousands(uploads),
            if uploads == 1 { "" } else { "s" },
            format_bytes(upload_bytes as f64)
        ));
    }
    (!parts.is_empty()).then(|| Finding {
        channel: None,
        text: format!("Aside from its channels: {}.", parts.join(", ")),
        at_ms: None,
    })
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
        at_ms: Some(since),
    }
}

/// What a channel's recording says on its own: its heartbeat against a proxy's idle timeout, its
/// letters' empty answers.
fn channel_findings(channel: &Channel, key: &ChannelKey, now: f64) -> Vec<Finding> {
    let mut findings = Vec::new();
    let say = |text: String| Finding {
        channel: Some(key.id.clone()),
        text,
        at_ms: None,
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
            // A socket's library watches its beats (a ping timeout); an EventSource watches nothing,
            // so only a page that checks for them can tell a dead radio.
            Some(every) if channel.kind == ChannelKind::Phone => findings.push(say(format!(
                "{your} heartbeats every {}: a quiet line survives a proxy's {} idle timeout, and a client that gives up after 2.5 missed heartbeats tells a dead one in {}. Yours may wait longer (its library's own timeout decides): a half-open measures it.",
                format_ms(every),
                format_ms(PROXY_IDLE_MS),
                format_ms(2.5 * every)
            ))),
            Some(every) => findings.push(say(format!(
                "{your} heartbeats every {}: a quiet line survives a proxy's {} idle timeout. EventSource itself never checks them: only a page that does can tell a dead line, in {} if it gives up after 2.5 missed heartbeats.",
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
            // Named by the rules that found them, so the words say what the figures counted.
            let rules: Vec<String> = channel
                .empty_by
                .iter()
                .map(|(rule, count)| format!("{} {count}", rule.words()))
                .collect();
            findings.push(say(format!(
                "{your} brought nothing new {:.0} % of the time ({} of {}: {}): a stream would carry the same news in ≈ {} instead of {}.",
                100.0 * channel.empty as f64 / channel.requests as f64,
                channel.empty,
                channel.requests,
                rules.join(", "),
                format_bytes(channel.stream_estimate() as f64),
                format_bytes(total as f64)
            )));
        }
        ChannelKind::Letters | ChannelKind::Held => {}
    }
    findings
}

/// An experiment's findings: written from its window's figures, channel by channel, while it runs and
/// observes ("so far"); once done, written one last time and frozen.
fn experiment_findings(
    proxy: &AppProxy,
    mut experiment: Experiment,
    frozen: bool,
    channels: &[(ChannelKey, Channel)],
    now: f64,
) -> Experiment {
    let on = match experiment.channels.first().map(String::as_str) {
        None | Some("all") => "every channel".to_owned(),
        Some(id) => channels.iter().find(|(key, _)| key.id == id).map_or_else(
            || "one channel".to_owned(),
            |(key, channel)| format!("your {}", key.called(channel.kind)),
        ),
    };
    experiment.title = experiment.kind.titled(&experiment.settings, &on);
    if frozen {
        return experiment;
    }
    let done = experiment.state == ExperimentState::Done;
    let until = match (done, experiment.window_closes_ms) {
        (true, Some(closes)) => closes.min(now),
        _ => now,
    };
    let mut findings = Vec::new();
    {
        let told = Told {
            experiment: &experiment,
            now_ms: until,
        };
        for id in experiment.figures.keys() {
            // Only what the page shows: the page itself and one-off requests are no channel.
            let Some((key, channel)) = channels.iter().find(|(key, _)| key.id == *id) else {
                continue;
            };
            findings.extend(told.findings(
                id,
                &key.called(channel.kind),
                channel.kind,
                channel.heartbeat_ms,
            ));
        }
    }
    // In the order it happened, each with the time of what it says: the experiment's story read from
    // its start (the rules' own order put a client there all along, 0.3 s in, after a summary written
    // at the window's close).
    findings.sort_by(|a, b| {
        let at = |finding: &Finding| finding.at_ms.unwrap_or(f64::INFINITY);
        at(a).total_cmp(&at(b))
    });
    if done {
        proxy.lab.freeze(experiment.id, findings.clone());
    }
    experiment.findings = findings;
    experiment
}
