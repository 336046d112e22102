//! Maps a method and a path to a [`Route`], or to the 404 / 405 the seed answers.

use percent_encoding::percent_decode_str;

use crate::error::ApiError;

/// Every endpoint of the API. Id-carrying routes hold the raw, percent-decoded path segment:
/// turning it into a number is validation, done by the handler so that a malformed id on a
/// known route is a 422, as in FastAPI, not a 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /`
    Root,
    /// `GET /health`
    Health,
    /// `GET /openapi.json`
    OpenApi,
    /// `GET /tasks`
    ListTasks,
    /// `POST /tasks`
    CreateTask,
    /// `GET /tasks/{task_id}`
    GetTask(String),
    /// `PUT /tasks/{task_id}`
    UpdateTask(String),
    /// `DELETE /tasks/{task_id}`
    DeleteTask(String),
    /// `PUT /tasks/{task_id}/complete`
    CompleteTask(String),
}

/// Resolves `method` and `path_with_query` to a route. The query string is ignored.
pub(crate) fn route(method: &str, path_with_query: &str) -> Result<Route, ApiError> {
    let path = path_with_query.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let not_allowed = |allow| Err(ApiError::MethodNotAllowed { allow });
    match segments.as_slice() {
        [""] => match method {
            "GET" => Ok(Route::Root),
            _ => not_allowed("GET"),
        },
        ["health"] => match method {
            "GET" => Ok(Route::Health),
            _ => not_allowed("GET"),
        },
        ["openapi.json"] => match method {
            "GET" => Ok(Route::OpenApi),
            _ => not_allowed("GET"),
        },
        ["tasks"] => match method {
            "GET" => Ok(Route::ListTasks),
            "POST" => Ok(Route::CreateTask),
            _ => not_allowed("GET, POST"),
        },
        ["tasks", id] if !id.is_empty() => {
            let id = decode(id);
            match method {
                "GET" => Ok(Route::GetTask(id)),
                "PUT" => Ok(Route::UpdateTask(id)),
                "DELETE" => Ok(Route::DeleteTask(id)),
                _ => not_allowed("GET, PUT, DELETE"),
            }
        }
        ["tasks", id, "complete"] if !id.is_empty() => match method {
            "PUT" => Ok(Route::CompleteTask(decode(id))),
            _ => not_allowed("PUT"),
        },
        _ => Err(ApiError::NotFound),
    }
}

/// Percent-decodes a path segment; invalid UTF-8 is kept visible as U+FFFD, so it still
/// fails integer parsing with the input shown.
fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(method: &str, path: &str) -> Option<&'static str> {
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
        ] {
            assert!(
                matches!(route("GET", path), Err(ApiError::NotFound)),
                "{path}"
            );
        }
    }

    #[test]
    fn wrong_methods_list_the_allowed_ones() {
        assert_eq!(allow("POST", "/"), Some("GET"));
        assert_eq!(allow("DELETE", "/health"), Some("GET"));
        assert_eq!(allow("PATCH", "/tasks"), Some("GET, POST"));
        assert_eq!(allow("POST", "/tasks/1"), Some("GET, PUT, DELETE"));
        assert_eq!(allow("GET", "/tasks/1/complete"), Some("PUT"));
        assert_eq!(allow("HEAD", "/tasks/abc"), Some("GET, PUT, DELETE"));
    }
}
