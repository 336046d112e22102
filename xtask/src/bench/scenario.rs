//! What every server is measured on, in the order the tables show it: four loads from `wrk`
//! (throughput at 32 connections, latency at one) and two kinds of start.

use serde::Serialize;

/// One thing measured on every server that can take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// `GET /health` at 32 connections: the fixed cost of a request.
    Health,
    /// `POST /tasks` at 32 connections: a durable write each, on a durable store.
    Create,
    /// `GET /health` over one connection, for its median latency.
    HealthLatency,
    /// `GET /tasks` with 100 tasks stored, at 32 connections.
    ListSmall,
    /// `GET /tasks` with 10,000 tasks stored, at 32 connections.
    ListLarge,
    /// From exec to the first 200 on `GET /health`, nothing compiled yet.
    StartCold,
    /// The same, with the compiled component already cached.
    StartWarm,
}

/// What a scenario's headline number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    /// Requests per second: more is better.
    Rate,
    /// wrk's median latency, in µs: less is better.
    Latency,
    /// The median of [`crate::bench::start::STARTS`] starts, in ms: less is better.
    StartTime,
}

/// A load `wrk` puts on a server.
#[derive(Debug)]
pub(crate) struct Load {
    /// wrk's threads and connections.
    pub(crate) wrk: &'static [&'static str],
    pub(crate) path: &'static str,
    /// Tasks stored when the load starts. Loads run in [`Scenario::LOAD_ORDER`] and tasks are
    /// only ever added.
    pub(crate) tasks: usize,
    /// The wrk Lua script that shapes each request, if it is not a plain `GET path`.
    pub(crate) script: Option<&'static str>,
}

/// Two threads (the machine has two cores), 32 connections.
const LOADED: &[&str] = &["-t2", "-c32"];
/// One thread, one connection: each request waits for the answer to the one before.
const ONE_BY_ONE: &[&str] = &["-t1", "-c1"];

const POST_SCRIPT: &str = r#"wrk.method = "POST"
wrk.body = '{"title":"bench","description":"load"}'
wrk.headers["Content-Type"] = "application/json"
"#;

impl Scenario {
    /// Every scenario, in the order the tables show them.
    pub(crate) const ALL: [Self; 7] = [
        Self::Health,
        Self::Create,
        Self::HealthLatency,
        Self::ListSmall,
        Self::ListLarge,
        Self::StartCold,
        Self::StartWarm,
    ];

    /// The loads in the order they run on one server: the writes last, since they add tens
    /// of thousands of tasks that the listings must not see.
    pub(crate) const LOAD_ORDER: [Self; 5] = [
        Self::Health,
        Self::HealthLatency,
        Self::ListSmall,
        Self::ListLarge,
        Self::Create,
    ];

    /// The scenario's name in tables, the chart and results.json.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Health => "GET /health, c=32",
            Self::Create => "POST /tasks, c=32",
            Self::HealthLatency => "GET /health, c=1",
            Self::ListSmall => "GET /tasks, 100 tasks",
            Self::ListLarge => "GET /tasks, 10,000 tasks",
            Self::StartCold => "start to first 200, cold",
            Self::StartWarm => "start to first 200, warm",
        }
    }

    pub(crate) fn metric(self) -> Metric {
        match self {
            Self::Health | Self::Create | Self::ListSmall | Self::ListLarge => Metric::Rate,
            Self::HealthLatency => Metric::Latency,
            Self::StartCold | Self::StartWarm => Metric::StartTime,
        }
    }

    /// The load wrk puts on the server; `None` for the starts.
    pub(crate) fn load(self) -> Option<Load> {
        let get = |wrk, path, tasks| Load {
            wrk,
            path,
            tasks,
            script: None,
        };
        match self {
            Self::Health => Some(get(LOADED, "/health", 0)),
            Self::HealthLatency => Some(get(ONE_BY_ONE, "/health", 0)),
            Self::ListSmall => Some(get(LOADED, "/tasks", 100)),
            Self::ListLarge => Some(get(LOADED, "/tasks", 10_000)),
            Self::Create => Some(Load {
                script: Some(POST_SCRIPT),
                ..get(LOADED, "/tasks", 10_000)
            }),
            Self::StartCold | Self::StartWarm => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scenario;

    #[test]
    fn every_load_runs_once_and_listings_run_before_the_writes() {
        let loads: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|scenario| scenario.load().is_some())
            .collect();
        assert_eq!(loads.len(), Scenario::LOAD_ORDER.len());
        for scenario in loads {
            assert!(Scenario::LOAD_ORDER.contains(&scenario), "{scenario:?}");
        }
        let position = |wanted| Scenario::LOAD_ORDER.iter().position(|s| *s == wanted);
        assert!(position(Scenario::ListLarge) < position(Scenario::Create));
        let tasks = |scenario: Scenario| scenario.load().map(|load| load.tasks);
        assert!(tasks(Scenario::ListSmall) < tasks(Scenario::ListLarge));
    }
}
