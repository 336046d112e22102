//! Fuzzing request validation with proptest: [`TaskCreate::from_body`] over any bytes and
//! content type, and [`parse_task_id`] over any text. Neither may panic; each answers with a
//! value or with errors in pydantic's shape; and for JSON documents and integer spellings,
//! which can be generated whole, the exact answer is predicted here from the seed's rules.

use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

use super::*;
use crate::error::ApiError;
use crate::message::Body;

/// Bodies on an edge: empty, truncated, not UTF-8, a byte-order mark, what Python's decoder
/// takes and serde_json does not (`NaN`, lone surrogates), numbers out of range, nesting
/// past serde_json's recursion limit, and multi-byte characters before an error.
const BODY_SEEDS: &[&[u8]] = &[
    b"",
    b" ",
    b"{",
    b"}",
    b"[",
    b"null",
    b"\"title\"",
    b"{\"title\":\"\xff\"}",
    b"\xff\xfe{}",
    b"\xef\xbb\xbf{\"title\":\"a\"}",
    b"{\"title\":NaN}",
    b"{\"title\":\"\\ud800\"}",
    b"{\"title\":1e999}",
    b"{\"title\":\"a\",\"title\":5}",
    b"{\"title\":\"\xc3\xa9\xc3\xa9\", }",
    b"{\"title\":\"a\"}\n\n x",
    b"\n\n\n{",
    b"{\"title\":\"a\"}\x00",
];

/// Content types on an edge of "is JSON".
const CONTENT_TYPE_SEEDS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("application/json"),
    Some("application/json;"),
    Some(" APPLICATION/JSON ; charset=latin-1"),
    Some("application/+json"),
    Some("application/jsonx"),
    Some("text/json"),
    Some("application"),
    Some(";application/json"),
    Some("é/json"),
];

/// Path ids on an edge of pydantic's integers.
const ID_SEEDS: &[&str] = &[
    "",
    " ",
    "+",
    "-",
    "+-1",
    "--1",
    ".",
    ".0",
    "1.",
    "0",
    "-0",
    "00",
    "+0.0",
    "1.0",
    "1.00",
    "1.01",
    "1 2",
    "1e3",
    "0x10",
    "1_000",
    "\u{a0}1\u{a0}",
    "\u{3000}7",
    "١",
    "１",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "99999999999999999999999999999999",
];

/// Checks that `errors` are a non-empty list in pydantic's shape, for `body`, and that the
/// 422 they render is that list under `detail`.
fn pydantic_shaped(body: &[u8], errors: &[ValidationError]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "an error answer with no errors");
    let listed = serde_json::to_value(errors).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let response = ApiError::Validation(errors.to_vec()).into_response();
    prop_assert_eq!(response.status, 422);
    let Body::Full(rendered) = response.body else {
        return Err(TestCaseError::fail("a 422 is never streamed"));
    };
    let rendered: Value =
        serde_json::from_slice(&rendered).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&rendered, &json!({ "detail": listed }));
    let characters = String::from_utf8_lossy(body).chars().count();
    for error in listed.as_array().into_iter().flatten() {
        let kind = error["type"].as_str().unwrap_or_default();
        let loc = error["loc"].as_array().cloned().unwrap_or_default();
        let mut keys: Vec<&str> = error
            .as_object()
            .map(|fields| fields.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        prop_assert!(error["msg"].as_str().is_some_and(|msg| !msg.is_empty()));
        match kind {
            "json_invalid" => {
                prop_assert_eq!(keys, ["ctx", "input", "loc", "msg", "type"]);
                prop_assert_eq!(loc.len(), 2);
                let offset = loc[1]
                    .as_u64()
                    .and_then(|offset| usize::try_from(offset).ok());
                prop_assert!(offset.is_some_and(|offset| offset <= characters), "{loc:?}");
                prop_assert_eq!(&error["input"], &json!({}));
                prop_assert!(error["ctx"]["error"].is_string());
            }
            "missing" | "string_type" | "model_attributes_type" => {
                prop_assert_eq!(keys, ["input", "loc", "msg", "type"]);
                let places = [
                    json!(["body"]),
                    json!(["body", "title"]),
                    json!(["body", "description"]),
                ];
                prop_assert!(places.contains(&Value::Array(loc.clone())), "{loc:?}");
            }
            other => return Err(TestCaseError::fail(format!("unknown error type {other:?}"))),
        }
    }
    Ok(())
}

/// What FastAPI answers for a `TaskCreate` body that decoded as `value`: the task, or the
/// 422's `detail` list.
fn validated(value: &Value) -> Result<TaskCreate, Value> {
    let Value::Object(fields) = value else {
        return Err(json!([{
            "type": "model_attributes_type", "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": value,
        }]));
    };
    let not_a_string = |field: &str, input: &Value| {
        json!({
            "type": "string_type", "loc": ["body", field],
            "msg": "Input should be a valid string", "input": input,
        })
    };
    let mut errors = Vec::new();
    match fields.get("title") {
        Some(Value::String(_)) => {}
        Some(other) => errors.push(not_a_string("title", other)),
        None => errors.push(json!({
            "type": "missing", "loc": ["body", "title"], "msg": "Field required", "input": value,
        })),
    }
    match fields.get("description") {
        Some(Value::String(_)) | None => {}
        Some(other) => errors.push(not_a_string("description", other)),
    }
    match (fields.get("title"), fields.get("description")) {
        (Some(Value::String(title)), description) if errors.is_empty() => Ok(TaskCreate {
            title: title.clone(),
            description: description
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        _ => Err(Value::Array(errors)),
    }
}

/// Any JSON document, with `title` and `description` keys common in its objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |float| {
            Number::from_f64(float).map(Value::Number)
        }),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![
            Just("title".to_owned()),
            Just("description".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Content types FastAPI decodes as JSON, in any ASCII case.
fn json_content_type() -> impl Strategy<Value = Option<String>> {
    let named = prop_oneof![
        Just("application/json".to_owned()),
        " ?application/[a-z.-]{0,8}\\+json ?(;.{0,12})?",
        "application/json; ?charset=[a-z0-9-]{1,8}",
    ];
    let cased = (named, any::<u64>()).prop_map(|(content_type, cases)| {
        content_type
            .chars()
            .enumerate()
            .map(|(at, c)| match cases >> (at % 64) & 1 {
                1 => c.to_ascii_uppercase(),
                _ => c,
            })
            .collect()
    });
    prop::option::weighted(0.8, cased)
}

/// Content types FastAPI does not decode, so that the body stays text.
fn other_content_type() -> impl Strategy<Value = Option<String>> {
    "text/[a-z]{1,8}|application/(jsonx?[a-z]{1,4}|x-www-form-urlencoded|octet-stream)|multipart/form-data"
        .prop_map(Some)
}

/// Bytes that are mostly not JSON: noise, and JSON documents broken by one edit.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    let broken = (
        json_value(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..3_u8,
    )
        .prop_map(|(value, at, byte, edit)| {
            let mut text = value.to_string().into_bytes();
            let at = at.index(text.len() + 1);
            match edit {
                0 => text.truncate(at),
                1 => text.insert(at, byte),
                _ => {
                    if let Some(place) = text.get_mut(at) {
                        *place = byte;
                    }
                }
            }
            text
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..48), broken]
}

/// The integer `n` spelled as pydantic accepts it, and what [`parse_task_id`] must make of
/// it: surrounding whitespace, a sign, leading zeros, a zero fraction.
fn integer_spelling() -> impl Strategy<Value = (String, Option<u64>)> {
    let digits = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        "[1-9][0-9]{19,30}",
        Just("0".to_owned()),
    ];
    (
        "[ \t\n]{0,2}",
        prop::sample::select(vec!["", "+", "-"]),
        "0{0,3}",
        digits,
        "(\\.0{1,3})?",
        "[ \t\n]{0,2}",
    )
        .prop_map(|(before, sign, zeros, digits, fraction, after)| {
            let id = match digits.parse::<u64>() {
                Ok(n) if n > 0 && sign != "-" => Some(n),
                _ => None,
            };
            (
                format!("{before}{sign}{zeros}{digits}{fraction}{after}"),
                id,
            )
        })
}

/// `parse_task_id(raw)` answers as pydantic would: an int_parsing error naming `raw`, or a
/// number that `raw` spells.
fn parses_like_pydantic(raw: &str) -> Result<(), TestCaseError> {
    match parse_task_id(raw) {
        Err(error) => {
            prop_assert_eq!(error.kind, "int_parsing");
            prop_assert_eq!(error.loc, vec![json!("path"), json!("task_id")]);
            prop_assert_eq!(*error.input, json!(raw));
        }
        Ok(id) => {
            let trimmed = raw.trim();
            let unsigned = trimmed.trim_start_matches(['+', '-']);
            prop_assert!(
                trimmed.len() - unsigned.len() <= 1,
                "one sign at most: {raw:?}"
            );
            let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
            prop_assert!(!whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(!fraction.is_empty() && fraction.bytes().all(|b| b == b'0'));
            let number = whole.trim_start_matches('0');
            match id {
                Some(id) => {
                    prop_assert!(!trimmed.starts_with('-'));
                    prop_assert_eq!(number, id.to_string());
                }
                None => prop_assert!(
                    trimmed.starts_with('-') || number.is_empty() || number.parse::<u64>().is_err()
                ),
            }
        }
    }
    Ok(())
}

/// `from_body(content_type, body)` does not panic, and any errors are pydantic-shaped.
fn validates(content_type: Option<&str>, body: &[u8]) -> Result<(), TestCaseError> {
    match TaskCreate::from_body(content_type, body) {
        Ok(_) => Ok(()),
        Err(errors) => pydantic_shaped(body, &errors),
    }
}

proptest! {
    #[test]
    fn any_body_with_any_content_type_validates_or_is_a_pydantic_error(
        content_type in prop_oneof![json_content_type(), other_content_type(), any::<Option<String>>()],
        body in any_body(),
    ) {
        validates(content_type.as_deref(), &body)?;
    }

    #[test]
    fn a_json_document_is_answered_as_fastapi_would(
        value in json_value(),
        content_type in json_content_type(),
        pretty in any::<bool>(),
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap_or_default()
        } else {
            value.to_string()
        };
        let answer = TaskCreate::from_body(content_type.as_deref(), text.as_bytes())
            .map_err(|errors| serde_json::to_value(errors).unwrap_or_default());
        prop_assert_eq!(answer, validated(&value));
    }

    #[test]
    fn a_body_of_another_content_type_is_its_text_not_an_object(
        content_type in other_content_type(),
        body in ".{1,40}",
    ) {
        let errors = TaskCreate::from_body(content_type.as_deref(), body.as_bytes())
            .map_err(|errors| serde_json::to_value(errors).unwrap_or_default());
        prop_assert_eq!(errors, validated(&Value::String(body)));
    }

    #[test]
    fn a_valid_task_round_trips(
        title in any::<String>(),
        description in any::<Option<String>>(),
        extra in prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..4),
        content_type in json_content_type(),
    ) {
        let mut fields: Map<String, Value> = extra.into_iter().collect();
        fields.insert("title".into(), title.clone().into());
        match &description {
            Some(description) => fields.insert("description".into(), description.clone().into()),
            None => fields.remove("description"),
        };
        let body = Value::Object(fields).to_string();
        prop_assert_eq!(
            TaskCreate::from_body(content_type.as_deref(), body.as_bytes()),
            Ok(TaskCreate { title, description: description.unwrap_or_default() })
        );
    }

    #[test]
    fn any_text_is_a_task_id_or_an_int_parsing_error(
        raw in prop_oneof!["[ +.0-9-]{0,6}", any::<String>()],
    ) {
        parses_like_pydantic(&raw)?;
    }

    #[test]
    fn every_spelling_of_an_integer_parses_to_it((raw, id) in integer_spelling()) {
        prop_assert_eq!(parse_task_id(&raw), Ok(id));
    }
}

#[test]
fn the_seed_corpus_validates_or_is_a_pydantic_error() {
    for content_type in CONTENT_TYPE_SEEDS {
        for body in BODY_SEEDS {
            if let Err(error) = validates(*content_type, body) {
                panic!(
                    "{content_type:?} {:?}: {error}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    if let Err(error) = validates(None, deep.as_bytes()) {
        panic!("10,000 nested arrays: {error}");
    }
}

#[test]
fn the_seed_corpus_parses_as_task_ids_or_int_parsing_errors() {
    for raw in ID_SEEDS {
        if let Err(error) = parses_like_pydantic(raw) {
            panic!("{raw:?}: {error}");
        }
    }
}
