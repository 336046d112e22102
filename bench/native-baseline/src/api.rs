//! The routes, one handler each, and the one place errors become answers, in FastAPI's
//! shapes: 404 `{"detail":"Not Found"}`, 405 with `Allow`, 404 `{"detail":"Task not
//! found"}`, 422 with pydantic's `detail` list, and 413 over the body limit.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;
use task_api_limits::too_large_detail;
use task_api_model::{Task, TaskCreate, ValidationError, parse_task_id};

use crate::store::Tasks;

/// An answer: a status, the `Allow` of a 405, and a JSON body.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) allow: Option<&'static str>,
    pub(crate) body: Vec<u8>,
}

/// A request as the API sees it, its body read whole.
#[derive(Debug)]
pub(crate) struct Request<'r> {
    pub(crate) method: &'r str,
    pub(crate) path_with_query: &'r str,
    pub(crate) content_type: Option<&'r str>,
    pub(crate) body: &'r [u8],
}

/// Everything that makes an error answer.
#[derive(Debug)]
enum ApiError {
    NotFound,
    MethodNotAllowed(&'static str),
    TaskNotFound,
    Validation(Vec<ValidationError>),
    Internal(String),
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(vec![error])
    }
}

/// Answers one request.
pub(crate) fn handle(tasks: &Tasks, request: &Request<'_>) -> Answer {
    route(tasks, request).unwrap_or_else(|error| match error {
        ApiError::NotFound => detail(404, "Not Found"),
        ApiError::MethodNotAllowed(allow) => Answer {
            allow: Some(allow),
            ..detail(405, "Method Not Allowed")
        },
        ApiError::TaskNotFound => detail(404, "Task not found"),
        ApiError::Validation(errors) => detail(422, errors),
        ApiError::Internal(why) => {
            eprintln!("ERROR: {why}");
            detail(500, "Internal Server Error")
        }
    })
}

/// The 413 for a body over `limit` bytes, which the server stops reading.
pub(crate) fn too_large(limit: usize) -> Answer {
    detail(413, too_large_detail(limit).to_string())
}

fn route(tasks: &Tasks, request: &Request<'_>) -> Result<Answer, ApiError> {
    let path = request
        .path_with_query
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let segments: Vec<&str> = path
        .strip_prefix('/')
        .ok_or(ApiError::NotFound)?
        .split('/')
        .collect();
    let method = request.method;
    match (segments.as_slice(), method) {
        ([""], "GET") => Ok(ok(
            &json!({ "message": "Task Manager API", "version": "1.0.0" }),
        )),
        ([""], _) => Err(ApiError::MethodNotAllowed("GET")),
        (["health"], "GET") => Ok(ok(&json!({ "status": "healthy", "timestamp": now() }))),
        (["health"], _) => Err(ApiError::MethodNotAllowed("GET")),
        (["tasks"], "GET") => tasks
            .list_json()
            .map(|body| Answer {
                status: 200,
                allow: None,
                body,
            })
            .map_err(|error| ApiError::Internal(format!("encoding the list: {error}"))),
        (["tasks"], "POST") => create_task(tasks, request),
        (["tasks"], _) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (["tasks", id], _) if !id.is_empty() => match method {
            "GET" => found(tasks.get(id_of(id)?.ok_or(ApiError::TaskNotFound)?)),
            "PUT" => update_task(tasks, id, request),
            "DELETE" => delete_task(tasks, id),
            _ => Err(ApiError::MethodNotAllowed("GET, PUT, DELETE")),
        },
        (["tasks", id, "complete"], "PUT") if !id.is_empty() => {
            let id = id_of(id)?.ok_or(ApiError::TaskNotFound)?;
            let task = tasks.change(id, |task| task.completed = true);
            eprintln!("INFO: Completed task: {id}");
            found(task)
        }
        (["tasks", id, "complete"], _) if !id.is_empty() => Err(ApiError::MethodNotAllowed("PUT")),
        _ => Err(ApiError::NotFound),
    }
}

fn create_task(tasks: &Tasks, request: &Request<'_>) -> Result<Answer, ApiError> {
    let input =
        TaskCreate::from_body(request.content_type, request.body).map_err(ApiError::Validation)?;
    let task = tasks.create(input, now());
    eprintln!("INFO: Created task: {}", task.title);
    Ok(ok(&task))
}

fn update_task(tasks: &Tasks, raw_id: &str, request: &Request<'_>) -> Result<Answer, ApiError> {
    // FastAPI validates the path and the body together and reports both, path first.
    let (id, input) = match (
        parse_task_id(raw_id),
        TaskCreate::from_body(request.content_type, request.body),
    ) {
        (Ok(id), Ok(input)) => (id, input),
        (id, input) => {
            let body = input.err().unwrap_or_default();
            return Err(ApiError::Validation(
                id.err().into_iter().chain(body).collect(),
            ));
        }
    };
    let id = id.ok_or(ApiError::TaskNotFound)?;
    let task = tasks.change(id, |task| {
        task.title = input.title;
        task.description = input.description;
    });
    eprintln!("INFO: Updated task: {id}");
    found(task)
}

fn delete_task(tasks: &Tasks, raw_id: &str) -> Result<Answer, ApiError> {
    let id = id_of(raw_id)?.ok_or(ApiError::TaskNotFound)?;
    if !tasks.remove(id) {
        return Err(ApiError::TaskNotFound);
    }
    eprintln!("INFO: Deleted task: {id}");
    Ok(ok(&json!({ "message": "Task deleted" })))
}

fn id_of(raw: &str) -> Result<Option<u64>, ApiError> {
    Ok(parse_task_id(raw)?)
}

fn found(task: Option<Task>) -> Result<Answer, ApiError> {
    Ok(ok(&task.ok_or(ApiError::TaskNotFound)?))
}

fn ok(value: &impl Serialize) -> Answer {
    json_answer(200, value)
}

/// FastAPI's error body, `{"detail": ...}`.
fn detail(status: u16, detail: impl Serialize) -> Answer {
    json_answer(status, &json!({ "detail": detail }))
}

fn json_answer(status: u16, value: &impl Serialize) -> Answer {
    Answer {
        status,
        allow: None,
        body: task_api_model::json_body(value),
    }
}

/// Seconds since the Unix epoch, as the seed's `time.time()`.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Request, handle};
    use crate::store::Tasks;

    fn send(
        tasks: &Tasks,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, Option<&'static str>, Value) {
        let answer = handle(
            tasks,
            &Request {
                method,
                path_with_query: path,
                content_type: Some("application/json"),
                body: body.as_bytes(),
            },
        );
        let json = serde_json::from_slice(&answer.body).expect("a JSON body");
        (answer.status, answer.allow, json)
    }

    #[test]
    fn a_task_lives_through_every_route() {
        let tasks = Tasks::default();
        let (status, _, created) = send(&tasks, "POST", "/tasks", r#"{"title":"a"}"#);
        assert_eq!(status, 200);
        assert_eq!(created["id"], 1);
        assert_eq!(created["description"], "");
        assert_eq!(send(&tasks, "GET", "/tasks?x=1", "").2[0]["title"], "a");
        assert_eq!(
            send(&tasks, "PUT", "/tasks/1", r#"{"title":"b"}"#).2["title"],
            "b"
        );
        assert_eq!(
            send(&tasks, "PUT", "/tasks/1/complete", "").2["completed"],
            true
        );
        assert_eq!(send(&tasks, "GET", "/tasks/1", "").2["title"], "b");
        assert_eq!(
            send(&tasks, "DELETE", "/tasks/1", "").2,
            json!({ "message": "Task deleted" })
        );
        assert_eq!(send(&tasks, "DELETE", "/tasks/1", "").0, 404);
        assert_eq!(
            send(&tasks, "POST", "/tasks", r#"{"title":"c"}"#).2["id"],
            2
        );
    }

    #[test]
    fn errors_keep_fastapis_shapes() {
        let tasks = Tasks::default();
        assert_eq!(send(&tasks, "GET", "/health", "").2["status"], "healthy");
        assert_eq!(
            send(&tasks, "GET", "/nope", "").2,
            json!({ "detail": "Not Found" })
        );
        assert_eq!(send(&tasks, "GET", "/tasks/", "").0, 404);
        assert_eq!(send(&tasks, "GET", "tasks", "").0, 404);
        assert_eq!(
            send(&tasks, "GET", "/tasks/9", "").2,
            json!({ "detail": "Task not found" })
        );
        assert_eq!(send(&tasks, "DELETE", "/tasks", "").1, Some("GET, POST"));
        assert_eq!(
            send(&tasks, "POST", "/tasks/1", "").1,
            Some("GET, PUT, DELETE")
        );
        assert_eq!(send(&tasks, "GET", "/tasks/1/complete", "").1, Some("PUT"));
        let (status, _, body) = send(&tasks, "GET", "/tasks/abc", "");
        assert_eq!(status, 422);
        assert_eq!(body["detail"][0]["type"], "int_parsing");
        let (status, _, body) = send(&tasks, "PUT", "/tasks/abc", "{}");
        assert_eq!(status, 422);
        assert_eq!(body["detail"][1]["loc"], json!(["body", "title"]));
    }
}
