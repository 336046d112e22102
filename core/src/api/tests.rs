//! The API's behaviour end to end, minus WASI: requests in, responses out, state in a
//! [`MemoryStore`].

use serde_json::{Value, json};
use task_api_limits::DEFAULT_MAX_BODY;

use super::handle;
use crate::message::{Body, Request};
use crate::repository::{NEXT_ID_KEY, task_key};
use crate::store::memory::MemoryStore;

const NOW: f64 = 1_700_000_000.25;

/// A response as the client sees it, with a streamed body written out.
struct Sent {
    status: u16,
    allow: Option<String>,
    body: Vec<u8>,
}

fn send(store: &MemoryStore, method: &str, path: &str, body: Option<Value>) -> Sent {
    send_within(DEFAULT_MAX_BODY, store, method, path, body)
}

/// [`send`] with a request-body limit of `max_body` in force.
fn send_within(
    max_body: usize,
    store: &MemoryStore,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Sent {
    let request = Request {
        method: method.to_owned(),
        path_with_query: path.to_owned(),
        content_type: body.as_ref().map(|_| "application/json".to_owned()),
        body: body
            .map(|body| body.to_string().into_bytes())
            .unwrap_or_default(),
    };
    let response = handle(store, &request, NOW, max_body);
    let body = response
        .body
        .into_bytes()
        .expect("the streamed body is written to the end");
    let (status, allow) = (response.status, response.allow);
    Sent {
        status,
        allow,
        body,
    }
}

/// Asserts the status first, then hands back the JSON body.
fn expect(response: &Sent, status: u16) -> Value {
    assert_eq!(
        response.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

fn create(store: &MemoryStore, title: &str) -> Value {
    expect(
        &send(store, "POST", "/tasks", Some(json!({ "title": title }))),
        200,
    )
}

#[test]
fn root_names_the_api() {
    let body = expect(&send(&MemoryStore::default(), "GET", "/", None), 200);
    assert_eq!(
        body,
        json!({ "message": "Task Manager API", "version": "1.0.0" })
    );
}

#[test]
fn health_reports_healthy_with_the_time() {
    let body = expect(&send(&MemoryStore::default(), "GET", "/health", None), 200);
    assert_eq!(body, json!({ "status": "healthy", "timestamp": NOW }));
}

#[test]
fn health_does_not_touch_the_store() {
    let store = MemoryStore::default();
    store.fail();
    expect(&send(&store, "GET", "/health", None), 200);
    expect(&send(&store, "GET", "/", None), 200);
}

#[test]
fn created_tasks_have_the_seed_shape() {
    let store = MemoryStore::default();
    let body = expect(
        &send(
            &store,
            "POST",
            "/tasks",
            Some(json!({ "title": "Write", "description": "docs" })),
        ),
        200,
    );
    assert_eq!(
        body,
        json!({ "id": 1, "title": "Write", "description": "docs", "completed": false, "created_at": NOW })
    );
}

#[test]
fn unknown_fields_cannot_set_id_or_completed() {
    let store = MemoryStore::default();
    let body = expect(
        &send(
            &store,
            "POST",
            "/tasks",
            Some(json!({ "title": "t", "id": 99, "completed": true })),
        ),
        200,
    );
    assert_eq!(
        (body["id"].clone(), body["completed"].clone()),
        (json!(1), json!(false))
    );
}

#[test]
fn tasks_are_listed_by_id_across_pages() {
    let store = MemoryStore::default();
    for title in ["a", "b", "c", "d", "e"] {
        create(&store, title);
    }
    // The largest limit leaves room for one task per `get-many`: a page takes several.
    for max_body in [DEFAULT_MAX_BODY, 64 << 20] {
        let body = expect(&send_within(max_body, &store, "GET", "/tasks", None), 200);
        let titles: Vec<&str> = body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["title"].as_str())
            .collect();
        assert_eq!(titles, ["a", "b", "c", "d", "e"], "max_body {max_body}");
    }
}

#[test]
fn tasks_are_listed_by_id_once_each_from_a_store_that_pages_in_no_order() {
    let store = MemoryStore::default();
    for title in ["a", "b", "c", "d", "e"] {
        create(&store, title);
    }
    store.list_like_scan();
    let body = expect(&send_within(16 << 20, &store, "GET", "/tasks", None), 200);
    let ids: Vec<u64> = body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_u64())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
}

#[test]
fn listing_ignores_keys_that_are_not_tasks() {
    let store = MemoryStore::default();
    create(&store, "a");
    store.put_raw("zzz-other-app", b"not json");
    store.put_raw("task/1", b"not the key of task 1");
    assert_eq!(
        expect(&send(&store, "GET", "/tasks", None), 200)
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn an_empty_store_lists_nothing() {
    assert_eq!(
        expect(&send(&MemoryStore::default(), "GET", "/tasks", None), 200),
        json!([])
    );
}

#[test]
fn a_task_can_be_fetched_by_id() {
    let store = MemoryStore::default();
    let created = create(&store, "a");
    assert_eq!(expect(&send(&store, "GET", "/tasks/1", None), 200), created);
}

#[test]
fn updating_replaces_title_and_description_and_keeps_completed() {
    let store = MemoryStore::default();
    create(&store, "a");
    expect(&send(&store, "PUT", "/tasks/1/complete", None), 200);
    let body = expect(
        &send(&store, "PUT", "/tasks/1", Some(json!({ "title": "b" }))),
        200,
    );
    assert_eq!(
        (&body["title"], &body["description"], &body["completed"]),
        (&json!("b"), &json!(""), &json!(true))
    );
}

#[test]
fn completing_ignores_any_body() {
    let store = MemoryStore::default();
    create(&store, "a");
    let body = expect(
        &send(&store, "PUT", "/tasks/1/complete", Some(json!("garbage"))),
        200,
    );
    assert_eq!(body["completed"], json!(true));
}

#[test]
fn deleting_removes_the_task() {
    let store = MemoryStore::default();
    create(&store, "a");
    assert_eq!(
        expect(&send(&store, "DELETE", "/tasks/1", None), 200),
        json!({ "message": "Task deleted" })
    );
    assert_eq!(store.raw(&task_key(1)), None);
    expect(&send(&store, "GET", "/tasks/1", None), 404);
}

#[test]
fn deleting_twice_returns_404() {
    let store = MemoryStore::default();
    create(&store, "a");
    expect(&send(&store, "DELETE", "/tasks/1", None), 200);
    let body = expect(&send(&store, "DELETE", "/tasks/1", None), 404);
    assert_eq!(body, json!({ "detail": "Task not found" }));
}

#[test]
fn ids_are_never_reused() {
    let store = MemoryStore::default();
    create(&store, "a");
    create(&store, "b");
    expect(&send(&store, "DELETE", "/tasks/2", None), 200);
    assert_eq!(create(&store, "c")["id"], json!(3));
    assert_eq!(store.raw(NEXT_ID_KEY), Some(b"3".to_vec()));
}

/// Asserts that each (method, path) answers `status` with `{"detail": detail}`.
#[track_caller]
fn expect_detail(store: &MemoryStore, routes: &[(&str, &str)], status: u16, detail: &str) {
    for (method, path) in routes {
        let body = expect(&send(store, method, path, None), status);
        assert_eq!(body, json!({ "detail": detail }), "{method} {path}");
    }
}

#[test]
fn unknown_tasks_are_404_on_every_route() {
    let store = MemoryStore::default();
    let routes = [
        ("GET", "/tasks/7"),
        ("PUT", "/tasks/7/complete"),
        ("DELETE", "/tasks/7"),
    ];
    expect_detail(&store, &routes, 404, "Task not found");
    expect(
        &send(&store, "PUT", "/tasks/7", Some(json!({ "title": "t" }))),
        404,
    );
}

#[test]
fn integers_that_cannot_be_ids_are_404_not_500() {
    let store = MemoryStore::default();
    for path in [
        "/tasks/-1",
        "/tasks/0",
        "/tasks/123456789012345678901234567890",
    ] {
        expect(&send(&store, "GET", path, None), 404);
    }
}

#[test]
fn signed_and_padded_ids_find_the_task() {
    let store = MemoryStore::default();
    create(&store, "a");
    for path in ["/tasks/+1", "/tasks/%201%20", "/tasks/1.0"] {
        assert_eq!(
            expect(&send(&store, "GET", path, None), 200)["id"],
            json!(1),
            "{path}"
        );
    }
}

#[test]
fn malformed_ids_are_int_parsing_errors() {
    let store = MemoryStore::default();
    let body = expect(&send(&store, "GET", "/tasks/1e3", None), 422);
    assert_eq!(
        body,
        json!({ "detail": [{
            "type": "int_parsing", "loc": ["path", "task_id"],
            "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "1e3"
        }] })
    );
}

#[test]
fn an_update_with_a_bad_id_and_a_bad_body_reports_both() {
    let store = MemoryStore::default();
    let body = expect(&send(&store, "PUT", "/tasks/abc", Some(json!({}))), 422);
    let kinds: Vec<&str> = body["detail"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["int_parsing", "missing"]);
}

#[test]
fn a_missing_title_is_422() {
    let body = expect(
        &send(
            &MemoryStore::default(),
            "POST",
            "/tasks",
            Some(json!({ "description": "d" })),
        ),
        422,
    );
    assert_eq!(body["detail"][0]["loc"], json!(["body", "title"]));
}

#[test]
fn failed_validation_stores_nothing() {
    let store = MemoryStore::default();
    expect(
        &send(&store, "POST", "/tasks", Some(json!({ "title": 5 }))),
        422,
    );
    assert_eq!(store.raw(NEXT_ID_KEY), None);
}

#[test]
fn unknown_paths_are_404() {
    let body = expect(&send(&MemoryStore::default(), "GET", "/nope", None), 404);
    assert_eq!(body, json!({ "detail": "Not Found" }));
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let response = send(&MemoryStore::default(), "PATCH", "/tasks", None);
    assert_eq!(
        expect(&response, 405),
        json!({ "detail": "Method Not Allowed" })
    );
    assert_eq!(response.allow.as_deref(), Some("GET, POST"));
}

#[test]
fn a_failing_store_is_a_plain_500() {
    let store = MemoryStore::default();
    store.fail();
    let routes = [
        ("GET", "/tasks"),
        ("GET", "/tasks/1"),
        ("DELETE", "/tasks/1"),
    ];
    expect_detail(&store, &routes, 500, "Internal Server Error");
    expect(
        &send(&store, "POST", "/tasks", Some(json!({ "title": "t" }))),
        500,
    );
}

#[test]
fn a_corrupt_stored_task_is_500_not_a_trap() {
    let store = MemoryStore::default();
    store.put_raw(&task_key(1), b"{not a task");
    expect(&send(&store, "GET", "/tasks/1", None), 500);
    expect(&send(&store, "GET", "/tasks", None), 500);
}

#[test]
fn openapi_describes_every_route_and_schema() {
    let body = expect(
        &send(&MemoryStore::default(), "GET", "/openapi.json", None),
        200,
    );
    assert_eq!(body["openapi"], json!("3.1.0"));
    let paths: Vec<&String> = body["paths"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        paths,
        [
            "/",
            "/health",
            "/tasks",
            "/tasks/{task_id}",
            "/tasks/{task_id}/complete"
        ]
    );
    for schema in [
        "Task",
        "TaskCreate",
        "HTTPValidationError",
        "ValidationError",
    ] {
        assert!(
            body["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
    // Every $ref must resolve, or generated clients break.
    let text = body.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            body["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[test]
fn a_store_that_fails_midway_leaves_the_list_visibly_unfinished() {
    let store = MemoryStore::default();
    for title in ["a", "b", "c", "d", "e"] {
        create(&store, title);
    }
    let request = Request {
        method: "GET".to_owned(),
        path_with_query: "/tasks".to_owned(),
        ..Request::default()
    };
    // The first batch is fetched before the head goes out; the rest while streaming. A
    // 16 MiB body limit makes a batch two tasks.
    let response = handle(&store, &request, NOW, 16 << 20);
    store.fail();
    let Body::Streamed(write) = response.body else {
        panic!("GET /tasks is streamed");
    };
    let mut written = Vec::new();
    assert!(write(&mut written).is_err(), "the failure is reported");
    let text = String::from_utf8_lossy(&written);
    assert!(
        text.starts_with(r#"[{"id":1,"#) && !text.ends_with(']'),
        "a started, unfinished array: {text}"
    );
}
