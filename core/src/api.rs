//! One handler per route, over any [`Store`]: [`handle`] answers a whole request. Plain Rust:
//! everything here runs in native unit tests, against an in-memory store.

use serde_json::json;

use crate::error::ApiError;
use crate::message::{Request, Response};
use crate::openapi;
use crate::repository::Tasks;
use crate::router::{self, Route};
use crate::store::Store;
use crate::task::{Task, TaskCreate, ValidationError, parse_task_id};

/// Answers one request. `now` is the wall-clock time in seconds since the epoch, and
/// `max_body` the request-body limit in force, which no stored task exceeds.
pub fn handle<'s, S: Store>(
    store: &'s S,
    request: &Request,
    now: f64,
    max_body: usize,
) -> Response<'s> {
    dispatch(&Tasks::new(store, max_body), request, now)
        .unwrap_or_else(|error| error.into_response())
}

fn dispatch<'s, S: Store>(
    tasks: &Tasks<'s, S>,
    request: &Request,
    now: f64,
) -> Result<Response<'s>, ApiError> {
    match router::route(&request.method, &request.path_with_query)? {
        Route::Root => Ok(root()),
        Route::Health => Ok(health_check(now)),
        Route::OpenApi => Ok(Response::json(200, &openapi::document())),
        Route::ListTasks => list_tasks(tasks),
        Route::CreateTask => create_task(tasks, request, now),
        Route::GetTask(id) => get_task(tasks, &id),
        Route::UpdateTask(id) => update_task(tasks, &id, request),
        Route::DeleteTask(id) => delete_task(tasks, &id),
        Route::CompleteTask(id) => complete_task(tasks, &id),
    }
}

fn root() -> Response<'static> {
    Response::json(
        200,
        &json!({ "message": openapi::TITLE, "version": openapi::VERSION }),
    )
}

fn health_check(now: f64) -> Response<'static> {
    Response::json(200, &json!({ "status": "healthy", "timestamp": now }))
}

/// Streamed: the whole list need not fit in guest memory (see [`crate::repository`]).
fn list_tasks<'s, S: Store>(tasks: &Tasks<'s, S>) -> Result<Response<'s>, ApiError> {
    let listing = tasks.list()?;
    Ok(Response::streamed(move |out| listing.write_json(out)))
}

fn create_task<S: Store>(
    tasks: &Tasks<'_, S>,
    request: &Request,
    now: f64,
) -> Result<Response<'static>, ApiError> {
    let input = parse_body(request).map_err(ApiError::Validation)?;
    let task = Task {
        id: tasks.next_id()?,
        title: input.title,
        description: input.description,
        completed: false,
        created_at: now,
    };
    tasks.put(&task)?;
    eprintln!("INFO: Created task: {}", task.title);
    Ok(Response::json(200, &task))
}

fn get_task<S: Store>(tasks: &Tasks<'_, S>, raw_id: &str) -> Result<Response<'static>, ApiError> {
    let task = find(tasks, parse_task_id(raw_id)?)?;
    Ok(Response::json(200, &task))
}

fn update_task<S: Store>(
    tasks: &Tasks<'_, S>,
    raw_id: &str,
    request: &Request,
) -> Result<Response<'static>, ApiError> {
    // FastAPI validates the path and the body together and reports both, path first.
    let (id, input) = match (parse_task_id(raw_id), parse_body(request)) {
        (Ok(id), Ok(input)) => (id, input),
        (id, input) => {
            let body_errors = input.err().unwrap_or_default();
            return Err(ApiError::Validation(
                id.err().into_iter().chain(body_errors).collect(),
            ));
        }
    };
    let mut task = find(tasks, id)?;
    task.title = input.title;
    task.description = input.description;
    tasks.put(&task)?;
    eprintln!("INFO: Updated task: {}", task.id);
    Ok(Response::json(200, &task))
}

fn delete_task<S: Store>(
    tasks: &Tasks<'_, S>,
    raw_id: &str,
) -> Result<Response<'static>, ApiError> {
    let task = find(tasks, parse_task_id(raw_id)?)?;
    tasks.remove(task.id)?;
    eprintln!("INFO: Deleted task: {}", task.id);
    Ok(Response::json(200, &json!({ "message": "Task deleted" })))
}

fn complete_task<S: Store>(
    tasks: &Tasks<'_, S>,
    raw_id: &str,
) -> Result<Response<'static>, ApiError> {
    let mut task = find(tasks, parse_task_id(raw_id)?)?;
    task.completed = true;
    tasks.put(&task)?;
    eprintln!("INFO: Completed task: {}", task.id);
    Ok(Response::json(200, &task))
}

/// The task behind a parsed id; ids that cannot exist (`None`) are simply not found.
fn find<S: Store>(tasks: &Tasks<'_, S>, id: Option<u64>) -> Result<Task, ApiError> {
    let id = id.ok_or(ApiError::TaskNotFound)?;
    tasks.get(id)?.ok_or(ApiError::TaskNotFound)
}

fn parse_body(request: &Request) -> Result<TaskCreate, Vec<ValidationError>> {
    TaskCreate::from_body(request.content_type.as_deref(), &request.body)
}

#[cfg(test)]
mod tests;
