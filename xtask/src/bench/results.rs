//! What a run measured, and everything computed from it: a table per scenario, the ratios
//! of each task-host to each peer, and issue 12's targets checked. Nothing here measures, so
//! all of it is unit-tested; `results.json` is [`Results`] serialized.

use std::fmt::Write as _;

use serde::Serialize;

use crate::bench::scenario::{Metric, Scenario};
use crate::bench::server::Role;

/// The width of the server column in every table: the longest label, and a space.
const LABEL: usize = 28;

/// One run of the bench.
#[derive(Debug, Serialize)]
pub(crate) struct Results {
    /// Seconds of load per scenario.
    pub(crate) seconds: u32,
    pub(crate) machine: Machine,
    /// In the order they ran.
    pub(crate) servers: Vec<ServerRun>,
    /// Component swaps under task-host, from the rename to the first response, in ms.
    pub(crate) swaps_ms: Vec<f64>,
}

/// What the numbers were measured on.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    /// `/proc/loadavg` as the run started: the machine is shared, and a busy one lowers
    /// every number.
    pub(crate) load_average: String,
}

/// Everything one server measured.
#[derive(Debug, Serialize)]
pub(crate) struct ServerRun {
    pub(crate) label: String,
    pub(crate) role: Role,
    /// Why it did not run at all (no python3, no wasmtime), if it did not.
    pub(crate) skipped: Option<String>,
    pub(crate) cells: Vec<Cell>,
    /// What else the run showed: the cost of a large listing against a small one.
    pub(crate) notes: Vec<String>,
}

/// One scenario on one server.
#[derive(Debug, Serialize)]
pub(crate) struct Cell {
    pub(crate) scenario: Scenario,
    #[serde(flatten)]
    pub(crate) outcome: Outcome,
}

/// What came of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// wrk's numbers.
    Load {
        rate: f64,
        p50_us: f64,
        p99_us: f64,
        /// Errors wrk counted, writes per commit, a listing shorter than seeded.
        #[serde(skip_serializing_if = "String::is_empty")]
        note: String,
    },
    /// Start times, in ms.
    Start {
        p50_ms: f64,
        samples_ms: Vec<f64>,
        #[serde(skip_serializing_if = "String::is_empty")]
        note: String,
    },
    /// Not run on this server, and why.
    Excluded { reason: String },
}

impl ServerRun {
    fn outcome(&self, scenario: Scenario) -> Option<&Outcome> {
        self.cells
            .iter()
            .find(|cell| cell.scenario == scenario)
            .map(|cell| &cell.outcome)
    }

    /// The scenario's headline number: req/s, p50 in µs, or the median start in ms. Never
    /// zero, which would be no measurement, and no ratio.
    pub(crate) fn value(&self, scenario: Scenario) -> Option<f64> {
        let value = match (scenario.metric(), self.outcome(scenario)?) {
            (Metric::Rate, Outcome::Load { rate, .. }) => *rate,
            (Metric::Latency, Outcome::Load { p50_us, .. }) => *p50_us,
            (Metric::StartTime, Outcome::Start { p50_ms, .. }) => *p50_ms,
            _ => return None,
        };
        (value > 0.0).then_some(value)
    }

    /// Why the scenario has no number on this server.
    fn missing(&self, scenario: Scenario) -> String {
        if let Some(why) = &self.skipped {
            return format!("not run: {why}");
        }
        match self.outcome(scenario) {
            Some(Outcome::Excluded { reason }) => reason.clone(),
            _ => "not measured".to_owned(),
        }
    }
}

/// The median of `samples`; 0 for none.
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl Results {
    /// Every table: one per scenario, the swaps, the ratios and the targets.
    pub(crate) fn report(&self) -> String {
        let mut out = String::new();
        for scenario in Scenario::ALL {
            out.push_str(&self.scenario_table(scenario));
            out.push('\n');
        }
        if !self.swaps_ms.is_empty() {
            let swaps: Vec<String> = self.swaps_ms.iter().map(|ms| format!("{ms:.0}")).collect();
            let _ = writeln!(
                out,
                "component swap, rename to first response (task-host, memory): median {} \
                 ({} ms)\n",
                format_ms(median(&self.swaps_ms)),
                swaps.join(", ")
            );
        }
        for server in &self.servers {
            for note in &server.notes {
                let _ = writeln!(out, "{}: {note}", server.label);
            }
        }
        out.push('\n');
        out.push_str(&self.ratio_table());
        out.push('\n');
        out.push_str(&targets_table(&self.targets()));
        out
    }

    /// The scenario's table: a row per server, `–` with a footnote where it has no number.
    pub(crate) fn scenario_table(&self, scenario: Scenario) -> String {
        let mut out = String::new();
        let heading = match scenario.metric() {
            Metric::Rate | Metric::Latency => {
                format!("{} ({} s of wrk)", scenario.title(), self.seconds)
            }
            Metric::StartTime => format!(
                "{} (exec to GET /health 200, median of {})",
                scenario.title(),
                crate::bench::start::STARTS
            ),
        };
        let columns = match scenario.metric() {
            Metric::Rate => ["req/s", "p50", "p99"],
            Metric::Latency => ["p50", "p99", "req/s"],
            Metric::StartTime => ["p50", "min", "max"],
        };
        let _ = writeln!(out, "{heading}");
        let _ = writeln!(
            out,
            "  {:<LABEL$} {:>10} {:>10} {:>10}",
            "server", columns[0], columns[1], columns[2]
        );
        let mut footnotes: Vec<String> = Vec::new();
        for server in &self.servers {
            let cells = match server
                .outcome(scenario)
                .filter(|_| server.skipped.is_none())
            {
                Some(Outcome::Load {
                    rate,
                    p50_us,
                    p99_us,
                    note,
                }) => {
                    let [rate, p50, p99] =
                        [format_rate(*rate), format_us(*p50_us), format_us(*p99_us)];
                    let cells = match scenario.metric() {
                        Metric::Latency => [p50, p99, rate],
                        _ => [rate, p50, p99],
                    };
                    (cells, note.clone())
                }
                Some(Outcome::Start {
                    p50_ms,
                    samples_ms,
                    note,
                }) => {
                    let low = samples_ms.iter().copied().fold(f64::INFINITY, f64::min);
                    let high = samples_ms.iter().copied().fold(0.0, f64::max);
                    (
                        [format_ms(*p50_ms), format_ms(low), format_ms(high)],
                        note.clone(),
                    )
                }
                _ => {
                    let marker = footnote(&mut footnotes, server.missing(scenario));
                    let dash = || "–".to_owned();
                    ([dash(), dash(), dash()], marker)
                }
            };
            let ([first, second, third], note) = cells;
            let note = if note.is_empty() {
                String::new()
            } else {
                format!("  {note}")
            };
            let _ = writeln!(
                out,
                "  {:<LABEL$} {first:>10} {second:>10} {third:>10}{note}",
                server.label
            );
        }
        for (n, reason) in footnotes.iter().enumerate() {
            let _ = writeln!(out, "  [{}] {reason}", n + 1);
        }
        out
    }

    /// The first server in `role` with a number for `scenario`.
    fn peer_value(&self, role: Role, scenario: Scenario) -> Option<f64> {
        self.servers
            .iter()
            .filter(|server| server.role == role && server.skipped.is_none())
            .find_map(|server| server.value(scenario))
    }

    /// Each task-host against each peer, scenario by scenario.
    pub(crate) fn ratio_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "task-host against its peers: req/s as task-host ÷ peer (more is better); \
             latency and start as task-host − peer, and ÷ (less is better)"
        );
        let _ = write!(out, "  {:<26} {:<LABEL$}", "scenario", "server");
        for peer in Role::PEERS {
            let _ = write!(out, " {:>20}", peer.column());
        }
        out.push('\n');
        for scenario in Scenario::ALL {
            for server in self.servers.iter().filter(|s| s.role == Role::TaskHost) {
                let Some(value) = server.value(scenario) else {
                    continue;
                };
                let _ = write!(out, "  {:<26} {:<LABEL$}", scenario.title(), server.label);
                for peer in Role::PEERS {
                    let cell = self
                        .peer_value(peer, scenario)
                        .map_or_else(|| "–".to_owned(), |peer| compare(scenario, value, peer));
                    let _ = write!(out, " {cell:>20}");
                }
                out.push('\n');
            }
        }
        out
    }

    /// Issue 12's targets, for every task-host that ran.
    pub(crate) fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let stock = self.peer_value(Role::WasmtimePlain, Scenario::Health);
        let native_rate = self.peer_value(Role::Native, Scenario::Health);
        let native_p50 = self.peer_value(Role::Native, Scenario::HealthLatency);
        for server in self.servers.iter().filter(|s| s.role == Role::TaskHost) {
            let health = server.value(Scenario::Health);
            let target = |goal, check: Option<(String, Option<String>)>| Target {
                server: server.label.clone(),
                goal,
                measured: check
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), |(measured, _)| measured.clone()),
                verdict: match check {
                    None => "not measured".to_owned(),
                    Some((_, None)) => "met".to_owned(),
                    Some((_, Some(missed))) => missed,
                },
            };
            targets.push(target(
                "GET /health ≥ 3× stock wasmtime serve",
                health.zip(stock).map(|(health, stock)| {
                    let ratio = health / stock;
                    let missed = (ratio < 3.0).then(|| {
                        format!(
                            "missed by {:.0}%: it needs {:.2}× its rate",
                            (1.0 - ratio / 3.0) * 100.0,
                            3.0 / ratio
                        )
                    });
                    (format!("{ratio:.2}×"), missed)
                }),
            ));
            targets.push(target(
                "GET /health ≥ 40% of native",
                health.zip(native_rate).map(|(health, native)| {
                    let share = health / native * 100.0;
                    let missed =
                        (share < 40.0).then(|| format!("missed by {:.0} points", 40.0 - share));
                    (format!("{share:.0}%"), missed)
                }),
            ));
            targets.push(target(
                "c=1 p50 ≤ native + 30 µs",
                server
                    .value(Scenario::HealthLatency)
                    .zip(native_p50)
                    .map(|(p50, native)| {
                        let above = p50 - native;
                        let missed =
                            (above > 30.0).then(|| format!("missed by {:.0} µs", above - 30.0));
                        (format!("{above:+.0} µs"), missed)
                    }),
            ));
            targets.push(target(
                "warm start ≤ 15 ms p50",
                server.value(Scenario::StartWarm).map(|ms| {
                    let missed = (ms > 15.0).then(|| format!("missed by {:.1} ms", ms - 15.0));
                    (format_ms(ms), missed)
                }),
            ));
        }
        targets
    }
}

/// One of issue 12's targets on one server.
#[derive(Debug, PartialEq)]
pub(crate) struct Target {
    pub(crate) server: String,
    pub(crate) goal: &'static str,
    pub(crate) measured: String,
    /// `met`, `missed by …`, or `not measured`.
    pub(crate) verdict: String,
}

fn targets_table(targets: &[Target]) -> String {
    let mut out = String::from("issue 12's targets\n");
    for target in targets {
        let _ = writeln!(
            out,
            "  {:<LABEL$} {:<40} {:>10}  {}",
            target.server, target.goal, target.measured, target.verdict
        );
    }
    out
}

/// task-host's `value` against a peer's: a rate as a ratio, a time as the difference and
/// the ratio.
pub(crate) fn compare(scenario: Scenario, value: f64, peer: f64) -> String {
    match scenario.metric() {
        Metric::Rate => format!("{:.2}×", value / peer),
        Metric::Latency => format!("{:+.0} µs ({:.2}×)", value - peer, value / peer),
        Metric::StartTime => format!("{:+.1} ms ({:.2}×)", value - peer, value / peer),
    }
}

/// Adds `reason` to `footnotes` unless it is there, and returns its marker.
fn footnote(footnotes: &mut Vec<String>, reason: String) -> String {
    let n = match footnotes.iter().position(|known| *known == reason) {
        Some(n) => n,
        None => {
            footnotes.push(reason);
            footnotes.len() - 1
        }
    };
    format!("[{}]", n + 1)
}

/// `19,253`.
pub(crate) fn format_rate(rate: f64) -> String {
    let whole = format!("{:.0}", rate.max(0.0));
    let mut out = String::new();
    for (n, digit) in whole.chars().enumerate() {
        if n > 0 && (whole.len() - n) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `45 µs` below a millisecond, `1.64 ms` above.
pub(crate) fn format_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else {
        format_ms(us / 1e3)
    }
}

/// `12.3 ms`, or `1.64 ms` below 10.
pub(crate) fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_fits_the_server_column() {
        for server in crate::bench::server::SERVERS {
            assert!(server.label.chars().count() < LABEL, "{}", server.label);
        }
    }

    fn load(rate: f64, p50_us: f64) -> Outcome {
        Outcome::Load {
            rate,
            p50_us,
            p99_us: p50_us * 3.0,
            note: String::new(),
        }
    }

    fn start(p50_ms: f64) -> Outcome {
        Outcome::Start {
            p50_ms,
            samples_ms: vec![p50_ms, p50_ms + 2.0, p50_ms - 1.0],
            note: String::new(),
        }
    }

    fn server(label: &str, role: Role, cells: Vec<(Scenario, Outcome)>) -> ServerRun {
        ServerRun {
            label: label.to_owned(),
            role,
            skipped: None,
            cells: cells
                .into_iter()
                .map(|(scenario, outcome)| Cell { scenario, outcome })
                .collect(),
            notes: Vec::new(),
        }
    }

    fn results() -> Results {
        let excluded = || Outcome::Excluded {
            reason: "its store is empty for every request".to_owned(),
        };
        let mut fastapi = server("FastAPI", Role::FastApi, Vec::new());
        fastapi.skipped = Some("python3 is not on PATH".to_owned());
        Results {
            seconds: 5,
            machine: Machine {
                cores: 2,
                load_average: "0.10 0.20 0.30 1/100 42".to_owned(),
            },
            servers: vec![
                server(
                    "task-host, memory",
                    Role::TaskHost,
                    vec![
                        (Scenario::Health, load(24_000.0, 80.0)),
                        (Scenario::HealthLatency, load(9_000.0, 95.0)),
                        (Scenario::Create, load(8_000.0, 3_900.0)),
                        (Scenario::StartWarm, start(12.0)),
                    ],
                ),
                server(
                    "wasmtime serve, plain",
                    Role::WasmtimePlain,
                    vec![
                        (Scenario::Health, load(12_000.0, 2_400.0)),
                        (Scenario::Create, excluded()),
                    ],
                ),
                server(
                    "native",
                    Role::Native,
                    vec![
                        (Scenario::Health, load(80_000.0, 300.0)),
                        (Scenario::HealthLatency, load(20_000.0, 40.0)),
                    ],
                ),
                fastapi,
            ],
            swaps_ms: vec![30.0, 10.0, 20.0],
        }
    }

    #[test]
    fn the_headline_number_depends_on_the_scenario() {
        let results = results();
        let host = &results.servers[0];
        assert_eq!(host.value(Scenario::Health), Some(24_000.0));
        assert_eq!(host.value(Scenario::HealthLatency), Some(95.0));
        assert_eq!(host.value(Scenario::StartWarm), Some(12.0));
        assert_eq!(host.value(Scenario::ListLarge), None);
        assert_eq!(results.servers[1].value(Scenario::Create), None);
    }

    #[test]
    fn rates_compare_as_ratios_and_times_as_differences() {
        assert_eq!(compare(Scenario::Health, 24_000.0, 12_000.0), "2.00×");
        assert_eq!(
            compare(Scenario::HealthLatency, 95.0, 40.0),
            "+55 µs (2.38×)"
        );
        assert_eq!(compare(Scenario::StartWarm, 12.0, 16.0), "-4.0 ms (0.75×)");
    }

    #[test]
    fn targets_say_by_how_much_they_were_missed() {
        let targets = results().targets();
        let verdicts: Vec<(&str, &str, &str)> = targets
            .iter()
            .map(|t| (t.goal, t.measured.as_str(), t.verdict.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            [
                (
                    "GET /health ≥ 3× stock wasmtime serve",
                    "2.00×",
                    "missed by 33%: it needs 1.50× its rate"
                ),
                ("GET /health ≥ 40% of native", "30%", "missed by 10 points"),
                ("c=1 p50 ≤ native + 30 µs", "+55 µs", "missed by 25 µs"),
                ("warm start ≤ 15 ms p50", "12.0 ms", "met"),
            ]
        );
        assert!(targets.iter().all(|t| t.server == "task-host, memory"));
    }

    #[test]
    fn a_server_without_a_number_shows_a_dash_and_a_footnote() {
        let table = results().scenario_table(Scenario::Create);
        let row = |label: &str| {
            table
                .lines()
                .find(|line| line.trim_start().starts_with(label))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(row("task-host, memory").contains("8,000"), "{table}");
        assert!(row("wasmtime serve, plain").contains("–"), "{table}");
        assert!(row("wasmtime serve, plain").ends_with("[1]"), "{table}");
        assert!(row("native").ends_with("[2]"), "{table}");
        assert!(row("FastAPI").ends_with("[3]"), "{table}");
        assert!(
            table.contains("[1] its store is empty for every request"),
            "{table}"
        );
        assert!(table.contains("[2] not measured"), "{table}");
        assert!(
            table.contains("[3] not run: python3 is not on PATH"),
            "{table}"
        );
    }

    #[test]
    fn the_ratio_table_has_a_row_per_task_host_and_scenario_it_ran() {
        let table = results().ratio_table();
        let health = table
            .lines()
            .find(|line| line.contains("GET /health, c=32"))
            .expect("a GET /health row");
        // wasmtime serve, no standalone, native, no FastAPI.
        let cells: Vec<&str> = health.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 4..], ["2.00×", "–", "0.30×", "–"]);
        assert!(!table.contains("GET /tasks"), "{table}");
    }

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!(format_rate(19_253.4), "19,253");
        assert_eq!(format_rate(999.0), "999");
        assert_eq!(format_rate(1_234_567.0), "1,234,567");
        assert_eq!(format_us(45.2), "45 µs");
        assert_eq!(format_us(1_640.0), "1.64 ms");
        assert_eq!(format_ms(312.46), "312.5 ms");
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn results_serialize_with_their_scenario_and_outcome() {
        let json = serde_json::to_value(&results().servers[1].cells).expect("serializable");
        assert_eq!(json[0]["scenario"], "health");
        assert_eq!(json[0]["outcome"], "load");
        assert_eq!(json[0]["rate"], 12_000.0);
        assert_eq!(json[1]["outcome"], "excluded");
    }
}
