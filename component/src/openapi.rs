//! The OpenAPI 3.1 document served at `GET /openapi.json`, shaped as FastAPI generates it for
//! the seed app, plus `GET /tasks/{task_id}` and the 404 / 413 answers FastAPI leaves out.

use serde_json::{Value, json};

/// The API's title and version, shared by `GET /` and the document.
pub(crate) const TITLE: &str = "Task Manager API";
/// See [`TITLE`].
pub(crate) const VERSION: &str = "1.0.0";

/// Builds the document.
pub(crate) fn document() -> Value {
    let task_id = json!({
        "name": "task_id", "in": "path", "required": true,
        "schema": { "type": "integer", "title": "Task Id" }
    });
    let task_body = json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TaskCreate" } } }
    });
    let task = json_response("Successful Response", "#/components/schemas/Task");
    let invalid = json_response(
        "Validation Error",
        "#/components/schemas/HTTPValidationError",
    );
    let not_found = json_response("Task not found", "#/components/schemas/HTTPError");
    let too_large = json_response("Request body too large", "#/components/schemas/HTTPError");
    let message = json_response("Successful Response", "#/components/schemas/Message");
    json!({
        "openapi": "3.1.0",
        "info": { "title": TITLE, "version": VERSION },
        "paths": {
            "/": { "get": operation("Root", "root__get", json!({ "200": message })) },
            "/health": { "get": operation("Health Check", "health_check_health_get", json!({
                "200": json_response("Successful Response", "#/components/schemas/Health")
            })) },
            "/tasks": {
                "get": operation("Get Tasks", "get_tasks_tasks_get", json!({
                    "200": {
                        "description": "Successful Response",
                        "content": { "application/json": { "schema": {
                            "type": "array", "title": "Response Get Tasks Tasks Get",
                            "items": { "$ref": "#/components/schemas/Task" }
                        } } }
                    }
                })),
                "post": with_body(
                    operation("Create Task", "create_task_tasks_post", json!({ "200": task, "413": too_large, "422": invalid })),
                    &task_body,
                ),
            },
            "/tasks/{task_id}": {
                "get": with_params(
                    operation("Get Task", "get_task_tasks__task_id__get", json!({ "200": task, "404": not_found, "422": invalid })),
                    &task_id,
                ),
                "put": with_body(with_params(
                    operation("Update Task", "update_task_tasks__task_id__put", json!({ "200": task, "404": not_found, "413": too_large, "422": invalid })),
                    &task_id,
                ), &task_body),
                "delete": with_params(
                    operation("Delete Task", "delete_task_tasks__task_id__delete", json!({ "200": message, "404": not_found, "422": invalid })),
                    &task_id,
                ),
            },
            "/tasks/{task_id}/complete": {
                "put": with_params(
                    operation("Complete Task", "complete_task_tasks__task_id__complete_put", json!({ "200": task, "404": not_found, "422": invalid })),
                    &task_id,
                ),
            },
        },
        "components": { "schemas": schemas() },
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": schema } } } })
}

fn operation(summary: &str, operation_id: &str, responses: Value) -> Value {
    json!({ "summary": summary, "operationId": operation_id, "responses": responses })
}

fn with_params(mut operation: Value, parameter: &Value) -> Value {
    operation["parameters"] = json!([parameter]);
    operation
}

fn with_body(mut operation: Value, body: &Value) -> Value {
    operation["requestBody"] = body.clone();
    operation
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
