//! The OpenAPI 3.1 document served at `GET /openapi.json`, shaped as FastAPI generates it for
//! the seed app, plus `GET /tasks/{task_id}` and the 404 / 413 answers FastAPI leaves out.
//! Its paths are derived from [`ROUTES`], so they cannot drift from what is served.

use serde_json::{Map, Value, json};

use crate::router::{Answer, Operation, PathRoutes, ROUTES, TASK_ID};

/// The API's title and version, shared by `GET /` and the document.
pub(crate) const TITLE: &str = "Task Manager API";
/// See [`TITLE`].
pub(crate) const VERSION: &str = "1.0.0";

/// Builds the document. Its `paths` are [`ROUTES`], each operation described from what the
/// declaration says of it.
pub(crate) fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": TITLE, "version": VERSION },
        "paths": paths(),
        "components": { "schemas": schemas() },
    })
}

/// Every declared path with a documented operation, keyed as OpenAPI keys them.
fn paths() -> Map<String, Value> {
    ROUTES
        .iter()
        .filter_map(|routes| {
            let item: Map<String, Value> = routes
                .operations
                .iter()
                .filter_map(|op| Some((op.method.to_ascii_lowercase(), operation(routes, op)?)))
                .collect();
            (!item.is_empty()).then(|| (routes.path.to_owned(), item.into()))
        })
        .collect()
}

/// What FastAPI would document for `op`, or `None` for an undocumented one. A task id in the
/// path may name no task (404) or no integer (422); a task body may be too large (413) or
/// invalid (422).
fn operation(routes: &PathRoutes, op: &Operation) -> Option<Value> {
    let answer = op.answer?;
    let id = operation_id(op, routes.path);
    let mut responses = Map::new();
    responses.insert("200".to_owned(), success(answer, &id));
    let mut operation = json!({ "summary": title(op.name), "operationId": id });
    if routes.has_task_id() {
        let parameter = TASK_ID.trim_matches(['{', '}']);
        operation["parameters"] = json!([{
            "name": parameter, "in": "path", "required": true,
            "schema": { "type": "integer", "title": title(parameter) }
        }]);
        responses.insert(
            "404".to_owned(),
            json_response("Task not found", schema_ref("HTTPError")),
        );
    }
    if op.reads_task {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema_ref("TaskCreate") } }
        });
        responses.insert(
            "413".to_owned(),
            json_response("Request body too large", schema_ref("HTTPError")),
        );
    }
    if routes.has_task_id() || op.reads_task {
        responses.insert(
            "422".to_owned(),
            json_response("Validation Error", schema_ref("HTTPValidationError")),
        );
    }
    operation["responses"] = responses.into();
    Some(operation)
}

/// The 200 answer of operation `id`.
fn success(answer: Answer, id: &str) -> Value {
    let schema = match answer {
        Answer::Message => schema_ref("Message"),
        Answer::Health => schema_ref("Health"),
        Answer::Task => schema_ref("Task"),
        Answer::Tasks => json!({
            "type": "array",
            "title": title(&format!("response_{id}")),
            "items": schema_ref("Task"),
        }),
    };
    json_response("Successful Response", schema)
}

/// FastAPI's `generate_unique_id`: the handler name and the path, every non-word character
/// made `_`, then `_` and the method: `get_task_tasks__task_id__get`.
fn operation_id(op: &Operation, path: &str) -> String {
    let mut id: String = op
        .name
        .chars()
        .chain(path.chars())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    id.push('_');
    id.push_str(&op.method.to_ascii_lowercase());
    id
}

/// FastAPI's titles from snake case: `health_check` is `Health Check`.
fn title(snake: &str) -> String {
    let words: Vec<String> = snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    words.join(" ")
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn schemas() -> Value {
    json!({
        "Task": {
            "type": "object", "title": "Task",
            "properties": {
                "id": { "type": "integer", "title": "Id" },
                "title": { "type": "string", "title": "Title" },
                "description": { "type": "string", "title": "Description", "default": "" },
                "completed": { "type": "boolean", "title": "Completed", "default": false },
                "created_at": { "type": "number", "title": "Created At" },
            },
            "required": ["id", "title", "created_at"],
        },
        "TaskCreate": {
            "type": "object", "title": "TaskCreate",
            "properties": {
                "title": { "type": "string", "title": "Title" },
                "description": { "type": "string", "title": "Description", "default": "" },
            },
            "required": ["title"],
        },
        "Message": {
            "type": "object", "title": "Message",
            "properties": {
                "message": { "type": "string", "title": "Message" },
                "version": { "type": "string", "title": "Version" },
            },
            "required": ["message"],
        },
        "Health": {
            "type": "object", "title": "Health",
            "properties": {
                "status": { "type": "string", "title": "Status" },
                "timestamp": { "type": "number", "title": "Timestamp" },
            },
            "required": ["status", "timestamp"],
        },
        "HTTPError": {
            "type": "object", "title": "HTTPError",
            "properties": { "detail": { "type": "string", "title": "Detail" } },
            "required": ["detail"],
        },
        "HTTPValidationError": {
            "type": "object", "title": "HTTPValidationError",
            "properties": { "detail": {
                "type": "array", "title": "Detail",
                "items": { "$ref": "#/components/schemas/ValidationError" }
            } },
        },
        "ValidationError": {
            "type": "object", "title": "ValidationError",
            "properties": {
                "loc": { "type": "array", "title": "Location", "items": { "anyOf": [{ "type": "string" }, { "type": "integer" }] } },
                "msg": { "type": "string", "title": "Message" },
                "type": { "type": "string", "title": "Error Type" },
                "input": { "title": "Input" },
                "ctx": { "type": "object", "title": "Context" },
            },
            "required": ["loc", "msg", "type"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::router;

    /// A request path that matches `template`.
    fn concrete(template: &str) -> String {
        template.replace(TASK_ID, "1")
    }

    #[test]
    fn the_document_and_the_allow_headers_come_from_the_one_table() {
        let document = document();
        let paths = document["paths"].as_object().expect("paths");
        let mut documented = 0;
        for routes in ROUTES {
            let path = concrete(routes.path);
            let declared: Vec<&str> = routes.operations.iter().map(|op| op.method).collect();
            for method in &declared {
                assert!(router::route(method, &path).is_ok(), "{method} {path}");
            }
            match router::route("UNDECLARED", &path) {
                Err(ApiError::MethodNotAllowed { allow }) => {
                    assert_eq!(allow, declared.join(", "), "Allow on {path}");
                }
                _ => panic!("an undeclared method on {path} is not a 405"),
            }

            let mut in_document: Vec<String> = routes
                .operations
                .iter()
                .filter(|op| op.answer.is_some())
                .map(|op| op.method.to_ascii_lowercase())
                .collect();
            in_document.sort();
            let item = paths.get(routes.path).and_then(Value::as_object);
            let listed: Vec<String> = item
                .map(|item| item.keys().cloned().collect())
                .unwrap_or_default();
            assert_eq!(listed, in_document, "{} in the document", routes.path);
            documented += usize::from(item.is_some());
        }
        assert_eq!(paths.len(), documented, "every documented path is declared");
    }

    #[test]
    fn operations_are_named_as_fastapi_names_them() {
        let document = document();
        let operation = |path: &str, method: &str| {
            let op = &document["paths"][path][method];
            (op["operationId"].clone(), op["summary"].clone())
        };
        assert_eq!(operation("/", "get"), (json!("root__get"), json!("Root")));
        assert_eq!(
            operation("/health", "get"),
            (json!("health_check_health_get"), json!("Health Check"))
        );
        assert_eq!(
            operation("/tasks/{task_id}/complete", "put"),
            (
                json!("complete_task_tasks__task_id__complete_put"),
                json!("Complete Task")
            )
        );
    }
}
