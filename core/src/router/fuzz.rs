//! Fuzzing [`route`] with proptest: any method and path resolves without panicking, and always
//! as the route table says. The table's answer is worked out here another way than
//! [`PathRoutes::matches`] does it: by writing the declared path out with the request's id
//! segment in place of [`TASK_ID`] and comparing the strings.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use proptest::prelude::*;

use super::*;

/// Inputs that once mattered or sit on an edge: paths without their leading slash (routed as
/// if they had one until this target found it), empty and doubled segments, encoded slashes,
/// bad escapes, queries and fragments, case.
const SEEDS: &[(&str, &str)] = &[
    ("GET", ""),
    ("GET", "tasks"),
    ("PUT", "tasks/1/complete"),
    ("OPTIONS", "*"),
    ("GET", "/"),
    ("GET", "//"),
    ("GET", "//tasks"),
    ("GET", "/tasks/"),
    ("GET", "/tasks//"),
    ("GET", "/tasks/%2F"),
    ("PUT", "/tasks/%2F/complete"),
    ("GET", "/tasks/%"),
    ("GET", "/tasks/%ff%fe"),
    ("DELETE", "/tasks/%00"),
    ("GET", "/tasks?"),
    ("GET", "/tasks#/1"),
    ("GET", "/tasks/1?x=/complete"),
    ("PUT", "/tasks/1/complete/"),
    ("GET", "/TASKS"),
    ("get", "/tasks"),
    ("", "/tasks"),
    ("GET ", "/tasks"),
    ("GET", "/openapi.json/"),
];

/// Bytes a path segment cannot hold as they are: what ends a segment or the path, escapes,
/// and controls.
const SEGMENT_ESCAPES: &AsciiSet = &CONTROLS.add(b'/').add(b'?').add(b'#').add(b'%').add(b' ');

/// What the table says about `path_with_query`: the declared path it names, and its id
/// segment, decoded (empty where the path has none).
fn declared(path_with_query: &str) -> Option<(&'static PathRoutes, String)> {
    let requested = path_with_query.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = requested.split('/').collect();
    let mut matching = ROUTES.iter().filter_map(|routes| {
        let raw_id = match routes.path.split('/').position(|part| part == TASK_ID) {
            Some(at) => *segments.get(at).filter(|segment| !segment.is_empty())?,
            None => "",
        };
        let written_out = routes.path.replace(TASK_ID, raw_id);
        let id = percent_decode_str(raw_id).decode_utf8_lossy().into_owned();
        (written_out == requested).then_some((routes, id))
    });
    let first = matching.next();
    assert!(
        matching.next().is_none(),
        "two declared paths match {requested:?}: the table is ambiguous"
    );
    first
}

/// `route(method, path)` answers as the table says.
fn routes_as_declared(method: &str, path: &str) -> Result<(), TestCaseError> {
    let routed = route(method, path);
    match (declared(path), routed) {
        (None, Err(ApiError::NotFound)) => {}
        (Some((routes, id)), Ok(route)) => {
            let operation = routes.operations.iter().find(|op| op.method == method);
            prop_assert!(
                operation.is_some(),
                "{method} is not declared on {}",
                routes.path
            );
            if let Some(operation) = operation {
                prop_assert_eq!(route, (operation.to)(id));
            }
        }
        (Some((routes, _)), Err(ApiError::MethodNotAllowed { allow })) => {
            prop_assert!(routes.operations.iter().all(|op| op.method != method));
            prop_assert_eq!(allow, routes.allow());
        }
        (declared, routed) => {
            let declared = declared.map(|(routes, id)| (routes.path, id));
            return Err(TestCaseError::fail(format!(
                "{method} {path:?}: the table says {declared:?}, route says {routed:?}"
            )));
        }
    }
    Ok(())
}

/// The table's methods, near misses of them, and any text.
fn method() -> impl Strategy<Value = String> {
    let declared: Vec<&str> = ROUTES
        .iter()
        .flat_map(|routes| routes.operations.iter().map(|op| op.method))
        .chain(["HEAD", "PATCH", "OPTIONS", "get", "Put", "GET ", ""])
        .collect();
    prop_oneof![
        3 => prop::sample::select(declared).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Paths built from the table's own segments, ids, escapes and noise, so that near misses of
/// real routes are common; and any text at all.
fn path() -> impl Strategy<Value = String> {
    let literals: Vec<&str> = ROUTES
        .iter()
        .flat_map(|routes| routes.path.split('/'))
        .filter(|part| *part != TASK_ID)
        .collect();
    let segment = prop_oneof![
        3 => prop::sample::select(literals).prop_map(str::to_owned),
        2 => "[0-9]{1,3}",
        1 => "%[0-9A-Fa-f]{2}|%[0-9a-z]?",
        1 => "[^/?#]{0,6}",
    ];
    let built = (
        any::<bool>(),
        prop::collection::vec(segment, 0..5),
        "([?#].{0,8})?",
    )
        .prop_map(|(rooted, segments, query)| {
            let slash = if rooted { "/" } else { "" };
            format!("{slash}{}{query}", segments.join("/"))
        });
    prop_oneof![4 => built, 1 => any::<String>()]
}

/// A declared path and one of its operations, by index, an id segment of any text, and a
/// query or fragment.
fn declared_request() -> impl Strategy<Value = (usize, usize, String, String)> {
    (0..ROUTES.len()).prop_flat_map(|path| {
        let operations = ROUTES[path].operations.len();
        (Just(path), 0..operations, "(?s).+", "([?#].{0,8})?")
    })
}

proptest! {
    #[test]
    fn any_request_routes_as_the_table_says(method in method(), path in path()) {
        routes_as_declared(&method, &path)?;
    }

    #[test]
    fn every_declared_operation_routes_with_any_id(
        (path, operation, id, query) in declared_request()
    ) {
        let routes = &ROUTES[path];
        let operation = &routes.operations[operation];
        let segment = utf8_percent_encode(&id, SEGMENT_ESCAPES).to_string();
        let requested = format!("{}{query}", routes.path.replace(TASK_ID, &segment));
        let expected = if routes.has_task_id() { id } else { String::new() };
        prop_assert_eq!(route(operation.method, &requested).ok(), Some((operation.to)(expected)));
    }
}

#[test]
fn the_seed_corpus_routes_as_the_table_says() {
    for (method, path) in SEEDS {
        if let Err(error) = routes_as_declared(method, path) {
            panic!("{method} {path:?}: {error}");
        }
    }
}
