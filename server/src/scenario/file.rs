//! The scenario file: what a developer writes to run the lab against their app as a test (TOML).
//!
//! ```toml
//! name = "chat survives a half-open"
//! upstream = "http://127.0.0.1:8080"   # or --upstream
//! open = "/"                            # opened in headless Chromium through the proxy (optional)
//! wait_for = ["phone"]                  # channels that must appear first: kinds or paths
//! wait_s = 60                           # how long they may take (default 60)
//!
//! [[step]]
//! fault = "half_open"                   # or network = "3g"
//! for_s = 30
//! expect = { noticed_within_s = 40, recovered_within_s = 5 }
//! ```
//!
//! Every field is checked as it is read: an unknown one, a wrong type or a value out of range is an
//! error naming its line and field.

use serde::Deserialize;
use switchboard_shared::app::{AppFaultKind, AppFaultRequest};
use switchboard_shared::network::{Condition, is_preset, preset};

/// The longest a step may last, and a wait for channels: an hour.
const MAX_S: f64 = 3_600.0;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// The app's own address; `--upstream` overrides it.
    #[serde(default)]
    pub upstream: Option<String>,
    /// A path of the app opened in headless Chromium through the proxy.
    #[serde(default)]
    pub open: Option<String>,
    /// Channels that must appear before the steps begin: a kind (`phone`, `radio`, `letters`,
    /// `held`) or a path (`/socket.io/`); also the channels the expectations judge.
    #[serde(default)]
    pub wait_for: Vec<String>,
    #[serde(default = "default_wait_s")]
    pub wait_s: f64,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

fn default_wait_s() -> f64 {
    60.0
}

/// One experiment: a fault or a network, for a while, with what must hold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A fault kind of the lab: `drop`, `half_open`, `hiccup`, `delay`, `http_503`, `idle_timeout`,
    /// `no_heartbeat`.
    #[serde(default)]
    pub fault: Option<String>,
    /// A network preset (`3g`, `lossy`…) on the app's channels.
    #[serde(default)]
    pub network: Option<String>,
    /// A channel to aim at (a kind or a path, as in `wait_for`); every channel when absent.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub idle_ms: Option<u64>,
    /// How long the fault or network lasts (a drop is instant: then how long the step watches).
    pub for_s: f64,
    #[serde(default)]
    pub expect: Expect,
}

/// What must hold for a step to pass, by the lab's definitions
/// ([`switchboard_shared::app::experiment`]). Each is judged on every channel the scenario watches.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The browser noticed (gave up on a line open when the step began) within this many seconds of
    /// its start.
    #[serde(default)]
    pub noticed_within_s: Option<f64>,
    /// A connection got through within this many seconds of the step's start.
    #[serde(default)]
    pub redialed_within_s: Option<f64>,
    /// A message reached the browser again within this many seconds of the fault's end.
    #[serde(default)]
    pub recovered_within_s: Option<f64>,
    /// The browser was back within this many seconds of the step's start: a connection of the channel
    /// got through, or — a socket's — something reached it over a fallback transport of its session
    /// (Engine.IO's long polling) after the socket was lost, whichever came first. What the person saw,
    /// where `recovered` is the socket itself.
    #[serde(default)]
    pub back_within_s: Option<f64>,
    /// Exactly this many connections cut by the lab.
    #[serde(default)]
    pub cuts: Option<u64>,
    /// Nothing the app sent was withheld, swallowed or lost on the way (`true`).
    #[serde(default)]
    pub delivered_all: Option<bool>,
    /// The channel heartbeats at least this often (its pace as the lab reads it: a dead line can be
    /// told only so fast, and a proxy's idle timeout must be longer).
    #[serde(default)]
    pub heartbeat_at_most_s: Option<f64>,
}

/// What is wrong with a scenario file, naming where.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError(pub String);

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FileError {}

/// What a step does, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Fault(AppFaultRequest),
    Network(Condition),
}

impl Scenario {
    /// Reads and checks a scenario file's text.
    pub fn parse(text: &str) -> Result<Scenario, FileError> {
        let scenario: Scenario = toml::from_str(text).map_err(|err| {
            // toml says where first, quotes the line (`4 | for_s = "long"`), and says what is wrong
            // last: one sentence of the three, so the field is named even when only its value is wrong.
            let words = err.to_string();
            let lines: Vec<&str> = words
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let quoted = lines.iter().find_map(|line| {
                let (number, source) = line.split_once(" | ")?;
                number.trim().parse::<u32>().ok()?;
                Some(source.trim())
            });
            let first = lines.first().copied().unwrap_or_default();
            let last = lines
                .last()
                .copied()
                .filter(|l| !l.starts_with('|') && !l.contains(" | ") && *l != first);
            let mut sentence = first.to_owned();
            if let Some(source) = quoted {
                sentence.push_str(&format!(" (`{source}`)"));
            }
            if let Some(last) = last {
                sentence.push_str(&format!(": {last}"));
            }
            FileError(sentence)
        })?;
        let at = |n: usize, field: &str, why: String| {
            FileError(format!(
                "step {n} ({} in the file), {field}: {why}",
                ordinal(n)
            ))
        };
        if scenario.steps.is_empty() {
            return Err(FileError(
                "step: a scenario needs at least one [[step]]".into(),
            ));
        }
        if !(0.0..=MAX_S).contains(&scenario.wait_s) {
            return Err(FileError(format!(
                "wait_s: must be from 0 to {MAX_S} seconds"
            )));
        }
        for selector in &scenario.wait_for {
            check_selector(selector).map_err(|why| FileError(format!("wait_for: {why}")))?;
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            let n = i + 1;
            if !(step.for_s > 0.0 && step.for_s <= MAX_S) {
                return Err(at(
                    n,
                    "for_s",
                    format!("must be more than 0 and at most {MAX_S} seconds"),
                ));
            }
            if let Some(channel) = &step.channel {
                check_selector(channel).map_err(|why| at(n, "channel", why))?;
            }
            step.action().map_err(|(field, why)| at(n, field, why))?;
            for (field, value) in [
                ("expect.noticed_within_s", step.expect.noticed_within_s),
                ("expect.redialed_within_s", step.expect.redialed_within_s),
                ("expect.recovered_within_s", step.expect.recovered_within_s),
                ("expect.back_within_s", step.expect.back_within_s),
                (
                    "expect.heartbeat_at_most_s",
                    step.expect.heartbeat_at_most_s,
                ),
            ] {
                if value.is_some_and(|s| !(0.0..=MAX_S).contains(&s)) {
                    return Err(at(n, field, format!("must be from 0 to {MAX_S} seconds")));
                }
            }
        }
        Ok(scenario)
    }
}

impl Step {
    /// The fault or network it sets, checked; or the field that is wrong and why.
    pub fn action(&self) -> Result<Action, (&'static str, String)> {
        match (&self.fault, &self.network) {
            (Some(_), Some(_)) => Err((
                "fault",
                "a step sets a fault or a network, not both: make two steps".into(),
            )),
            (None, None) => Err((
                "fault",
                "a step needs a fault (drop, half_open, …) or a network (3g, …)".into(),
            )),
            (None, Some(name)) => match preset(name) {
                Some(condition) => Ok(Action::Network(condition)),
                None if is_preset(name) => Err((
                    "network",
                    format!("{name:?} is no emulation (it is this machine's own network)"),
                )),
                None => Err((
                    "network",
                    format!(
                        "unknown preset {name:?}: one of {}",
                        switchboard_shared::network::PRESET_NAMES.join(", ")
                    ),
                )),
            },
            (Some(kind), None) => {
                let mut json = serde_json::json!({ "kind": kind });
                let parsed = AppFaultKind::ALL.into_iter().find(|k| k.as_str() == kind);
                match parsed {
                    None | Some(AppFaultKind::Clear | AppFaultKind::Release) => {
                        return Err((
                            "fault",
                            format!(
                                "unknown fault {kind:?}: one of drop, half_open, hiccup, delay, http_503, idle_timeout, no_heartbeat"
                            ),
                        ));
                    }
                    Some(kind) if kind.lasts() && kind != AppFaultKind::IdleTimeout => {
                        json["duration_ms"] = ((self.for_s * 1000.0).round() as u64).into();
                    }
                    Some(_) => {}
                }
                if let Some(ms) = self.delay_ms {
                    json["delay_ms"] = ms.into();
                }
                if let Some(ms) = self.idle_ms {
                    json["idle_ms"] = ms.into();
                }
                AppFaultRequest::from_json(&json)
                    .map(Action::Fault)
                    .map_err(|why| ("fault", why.to_string()))
            }
        }
    }

    /// What the step does, in words: "half_open 30 s", "network 3g 20 s".
    pub fn words(&self) -> String {
        let what = match (&self.fault, &self.network) {
            (Some(fault), _) => fault.clone(),
            (_, Some(network)) => format!("network {network}"),
            _ => "nothing".into(),
        };
        let mut words = format!(
            "{what} {}",
            switchboard_shared::format::format_ms(self.for_s * 1000.0)
        );
        if let Some(ms) = self.idle_ms {
            words.push_str(&format!(" (idle {ms} ms)"));
        }
        if let Some(ms) = self.delay_ms {
            words.push_str(&format!(" (+{ms} ms)"));
        }
        if let Some(channel) = &self.channel {
            words.push_str(&format!(" on {channel}"));
        }
        words
    }
}

/// The kinds a selector may name.
pub const KINDS: [&str; 4] = ["phone", "radio", "letters", "held"];

fn check_selector(selector: &str) -> Result<(), String> {
    if KINDS.contains(&selector) || selector.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{selector:?} is neither a kind ({}) nor a path starting with /",
            KINDS.join(", ")
        ))
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("the {n}{suffix} [[step]]")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "chat survives a half-open"
upstream = "http://127.0.0.1:8080"
open = "/"
wait_for = ["phone"]

[[step]]
network = "3g"
for_s = 20
expect = { delivered_all = true }

[[step]]
fault = "half_open"
for_s = 30
expect = { noticed_within_s = 40, recovered_within_s = 5 }

[[step]]
fault = "idle_timeout"
idle_ms = 60000
for_s = 120
expect = { cuts = 0 }
"#;

    #[test]
    fn the_example_reads_with_every_field() {
        let scenario = Scenario::parse(EXAMPLE).unwrap();
        assert_eq!(scenario.name, "chat survives a half-open");
        assert_eq!(scenario.upstream.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(scenario.open.as_deref(), Some("/"));
        assert_eq!(scenario.wait_for, ["phone"]);
        assert_eq!(scenario.wait_s, 60.0);
        assert_eq!(scenario.steps.len(), 3);
        assert_eq!(scenario.steps[0].expect.delivered_all, Some(true));
        assert!(matches!(scenario.steps[0].action(), Ok(Action::Network(c)) if c.name == "3g"));
        let Ok(Action::Fault(half_open)) = scenario.steps[1].action() else {
            panic!()
        };
        assert_eq!(
            (half_open.kind, half_open.duration_ms),
            (AppFaultKind::HalfOpen, Some(30_000))
        );
        assert_eq!(scenario.steps[1].expect.noticed_within_s, Some(40.0));
        assert_eq!(scenario.steps[1].expect.recovered_within_s, Some(5.0));
        let Ok(Action::Fault(idle)) = scenario.steps[2].action() else {
            panic!()
        };
        // Held until the step clears it.
        assert_eq!(
            (idle.kind, idle.idle_ms, idle.duration_ms),
            (AppFaultKind::IdleTimeout, Some(60_000), None)
        );
        assert_eq!(scenario.steps[2].expect.cuts, Some(0));
        assert_eq!(scenario.steps[1].words(), "half_open 30.0 s");
    }

    fn error(text: &str) -> String {
        Scenario::parse(text).unwrap_err().0
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_line_and_the_field() {
        let unknown = error(
            "name = \"x\"\n\n[[step]]\nfault = \"drop\"\nfor_s = 1\nexpect = { noticed_within = 3 }\n",
        );
        assert!(
            unknown.contains("line 6") && unknown.contains("noticed_within"),
            "{unknown}"
        );
        let wrong_type = error("name = \"x\"\n[[step]]\nfault = \"drop\"\nfor_s = \"long\"\n");
        assert!(
            wrong_type.contains("line 4") && wrong_type.contains("for_s"),
            "{wrong_type}"
        );
        let missing = error("name = \"x\"\n[[step]]\nfault = \"drop\"\n");
        assert!(missing.contains("for_s"), "{missing}");
        assert!(error("name = \"x\"\n").contains("step"));
    }

    #[test]
    fn a_step_is_checked_field_by_field() {
        let step = |body: &str| error(&format!("name = \"x\"\n[[step]]\n{body}\n"));
        assert_eq!(
            step("fault = \"meteor\"\nfor_s = 1"),
            "step 1 (the 1st [[step]] in the file), fault: unknown fault \"meteor\": one of drop, half_open, hiccup, delay, http_503, idle_timeout, no_heartbeat"
        );
        assert!(step("fault = \"drop\"\nnetwork = \"3g\"\nfor_s = 1").contains("not both"));
        assert!(step("for_s = 1").contains("needs a fault"));
        assert!(step("network = \"dialup\"\nfor_s = 1").contains("network: unknown preset"));
        assert!(step("fault = \"drop\"\nfor_s = 0").contains("for_s: must be more than 0"));
        assert!(
            step("fault = \"idle_timeout\"\nfor_s = 5").contains("idle_ms"),
            "an idle timeout needs its idle time"
        );
        assert!(
            step("fault = \"drop\"\nfor_s = 5\nchannel = \"socket\"")
                .contains("channel: \"socket\"")
        );
        assert!(
            step("fault = \"drop\"\nfor_s = 5\nexpect = { recovered_within_s = -1 }")
                .contains("expect.recovered_within_s")
        );
        let second = error(
            "name = \"x\"\n[[step]]\nfault = \"drop\"\nfor_s = 1\n[[step]]\nfault = \"drop\"\nfor_s = 0\n",
        );
        assert!(second.starts_with("step 2 (the 2nd [[step]]"), "{second}");
    }
}
