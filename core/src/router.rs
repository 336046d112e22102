//! The API's routes: [`ROUTES`] declares each path once, with its methods, as axum's
//! `.route(path, get(..).post(..))` does. [`route`] resolves a request against it to a
//! [`Route`], or to the 404 / 405 the seed answers; the 405's `Allow` header and the OpenAPI
//! document's `paths` ([`crate::openapi`]) are derived from it.

use percent_encoding::percent_decode_str;

use crate::error::ApiError;

/// Every path the API serves, with its methods in the order a 405's `Allow` lists them.
pub(crate) const ROUTES: &[PathRoutes] = &[
    path(
        "/",
        &[get("root", |_| Route::Root).answers(Answer::Message)],
    ),
    path(
        "/health",
        &[get("health_check", |_| Route::Health).answers(Answer::Health)],
    ),
    // Not in the document it serves, as FastAPI leaves it out.
    path("/openapi.json", &[get("openapi", |_| Route::OpenApi)]),
    path(
        "/tasks",
        &[
            get("get_tasks", |_| Route::ListTasks).answers(Answer::Tasks),
            post("create_task", |_| Route::CreateTask)
                .answers(Answer::Task)
                .reads_task(),
        ],
    ),
    path(
        "/tasks/{task_id}",
        &[
            get("get_task", Route::GetTask).answers(Answer::Task),
            put("update_task", Route::UpdateTask)
                .answers(Answer::Task)
                .reads_task(),
            delete("delete_task", Route::DeleteTask).answers(Answer::Message),
        ],
    ),
    path(
        "/tasks/{task_id}/complete",
        &[put("complete_task", Route::CompleteTask).answers(Answer::Task)],
    ),
];

/// The path segment that matches any non-empty segment and hands it, percent-decoded, to the
/// route: the API's one path parameter.
pub(crate) const TASK_ID: &str = "{task_id}";

/// Every endpoint of the API. Id-carrying routes hold the raw, percent-decoded path segment:
/// turning it into a number is validation, done by the handler so that a malformed id on a
/// known route is a 422, as in FastAPI, not a 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// The API's name and version.
    Root,
    /// A liveness answer that needs no store.
    Health,
    /// The OpenAPI document.
    OpenApi,
    /// Every task, by id.
    ListTasks,
    /// A new task from the body.
    CreateTask,
    /// One task.
    GetTask(String),
    /// One task's title and description replaced from the body.
    UpdateTask(String),
    /// One task removed.
    DeleteTask(String),
    /// One task marked completed.
    CompleteTask(String),
}

/// One path and the operations on it.
pub(crate) struct PathRoutes {
    /// The path; a [`TASK_ID`] segment matches any non-empty segment.
    pub(crate) path: &'static str,
    /// One per method, in `Allow` order.
    pub(crate) operations: &'static [Operation],
}

/// One method on one path: where it routes, and what the OpenAPI document says of it.
#[derive(Clone, Copy)]
pub(crate) struct Operation {
    /// Upper-case method name, as [`crate::message::Request`] carries it.
    pub(crate) method: &'static str,
    /// The seed's (FastAPI's) handler name, from which the document derives the operation's
    /// id and summary as FastAPI does.
    pub(crate) name: &'static str,
    /// Makes the route from the path's decoded [`TASK_ID`] segment, empty on paths without one.
    to: fn(String) -> Route,
    /// What a success answers. `None` keeps the operation out of the document.
    pub(crate) answer: Option<Answer>,
    /// Whether the body is a `TaskCreate` (and so may be too large or invalid).
    pub(crate) reads_task: bool,
}

/// What an operation answers with on success, as the document names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A `Message`.
    Message,
    /// A `Health`.
    Health,
    /// One `Task`.
    Task,
    /// A list of `Task`s.
    Tasks,
}

const fn path(path: &'static str, operations: &'static [Operation]) -> PathRoutes {
    PathRoutes { path, operations }
}

const fn get(name: &'static str, to: fn(String) -> Route) -> Operation {
    Operation::new("GET", name, to)
}

const fn post(name: &'static str, to: fn(String) -> Route) -> Operation {
    Operation::new("POST", name, to)
}

const fn put(name: &'static str, to: fn(String) -> Route) -> Operation {
    Operation::new("PUT", name, to)
}

const fn delete(name: &'static str, to: fn(String) -> Route) -> Operation {
    Operation::new("DELETE", name, to)
}

impl Operation {
    const fn new(method: &'static str, name: &'static str, to: fn(String) -> Route) -> Self {
        Self {
            method,
            name,
            to,
            answer: None,
            reads_task: false,
        }
    }

    const fn answers(self, answer: Answer) -> Self {
        Self {
            answer: Some(answer),
            ..self
        }
    }

    const fn reads_task(self) -> Self {
        Self {
            reads_task: true,
            ..self
        }
    }
}

impl PathRoutes {
    /// The `Allow` header of a 405 on this path.
    pub(crate) fn allow(&self) -> String {
        let methods: Vec<&str> = self.operations.iter().map(|op| op.method).collect();
        methods.join(", ")
    }

    /// Whether the path has a [`TASK_ID`] segment.
    pub(crate) fn has_task_id(&self) -> bool {
        segments(self.path).any(|segment| segment == TASK_ID)
    }

    /// If `path` is this one, its decoded [`TASK_ID`] segment (empty if there is none).
    fn matches(&self, path: &str) -> Option<String> {
        let mut requested = segments(path);
        let mut task_id = String::new();
        for expected in segments(self.path) {
            let segment = requested.next()?;
            match expected {
                TASK_ID if !segment.is_empty() => task_id = decode(segment),
                literal if literal == segment => {}
                _ => return None,
            }
        }
        requested.next().is_none().then_some(task_id)
    }
}

/// Resolves `method` and `path_with_query` to a route. The query string is ignored.
pub(crate) fn route(method: &str, path_with_query: &str) -> Result<Route, ApiError> {
    let requested = path_with_query.split(['?', '#']).next().unwrap_or_default();
    // A request target names a path only as an absolute path (RFC 9112 §3.2.1): `tasks` or
    // `*` are not `/tasks` or `/`.
    if !requested.starts_with('/') {
        return Err(ApiError::NotFound);
    }
    let (routes, task_id) = ROUTES
        .iter()
        .find_map(|routes| Some((routes, routes.matches(requested)?)))
        .ok_or(ApiError::NotFound)?;
    let operation = routes
        .operations
        .iter()
        .find(|operation| operation.method == method)
        .ok_or_else(|| ApiError::MethodNotAllowed {
            allow: routes.allow(),
        })?;
    Ok((operation.to)(task_id))
}

/// The segments of an absolute path: `/` has one, the empty one.
fn segments(path: &str) -> std::str::Split<'_, char> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

/// Percent-decodes a path segment; invalid UTF-8 is kept visible as U+FFFD, so it still
/// fails integer parsing with the input shown.
fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(method: &str, path: &str) -> Option<String> {
        match route(method, path) {
            Err(ApiError::MethodNotAllowed { allow }) => Some(allow),
            _ => None,
        }
    }

    #[test]
    fn every_endpoint_routes() {
        let cases = [
            ("GET", "/", Route::Root),
            ("GET", "/health", Route::Health),
            ("GET", "/openapi.json", Route::OpenApi),
            ("GET", "/tasks", Route::ListTasks),
            ("POST", "/tasks", Route::CreateTask),
            ("GET", "/tasks/1", Route::GetTask("1".into())),
            ("PUT", "/tasks/1", Route::UpdateTask("1".into())),
            ("DELETE", "/tasks/1", Route::DeleteTask("1".into())),
            ("PUT", "/tasks/1/complete", Route::CompleteTask("1".into())),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, path).ok(), Some(expected), "{method} {path}");
        }
    }

    #[test]
    fn the_query_string_is_ignored() {
        assert_eq!(route("GET", "/tasks?limit=1").ok(), Some(Route::ListTasks));
    }

    #[test]
    fn id_segments_are_percent_decoded_but_not_validated() {
        assert_eq!(
            route("GET", "/tasks/%201%20").ok(),
            Some(Route::GetTask(" 1 ".into()))
        );
        assert_eq!(
            route("GET", "/tasks/abc").ok(),
            Some(Route::GetTask("abc".into()))
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/nope",
            "/tasks/",
            "/tasks/1/2",
            "/tasks//complete",
            "/health/",
            "//",
            "",
            "*",
            "tasks",
            "tasks/1/complete",
        ] {
            assert!(
                matches!(route("GET", path), Err(ApiError::NotFound)),
                "{path}"
            );
        }
    }

    #[test]
    fn wrong_methods_list_the_allowed_ones() {
        assert_eq!(allow("POST", "/").as_deref(), Some("GET"));
        assert_eq!(allow("DELETE", "/health").as_deref(), Some("GET"));
        assert_eq!(allow("PATCH", "/tasks").as_deref(), Some("GET, POST"));
        assert_eq!(
            allow("POST", "/tasks/1").as_deref(),
            Some("GET, PUT, DELETE")
        );
        assert_eq!(allow("GET", "/tasks/1/complete").as_deref(), Some("PUT"));
        assert_eq!(
            allow("HEAD", "/tasks/abc").as_deref(),
            Some("GET, PUT, DELETE")
        );
    }
}
