//! The seed's models, `Task` and `TaskCreate`, and the validation that FastAPI and pydantic
//! apply to request bodies and path ids, reproduced down to their error shapes. `fuzz` checks
//! the validation against the API's own 422 rendering.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A stored task, serialized exactly as the seed's pydantic model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique, starts at 1, never reused.
    pub id: u64,
    /// Short name of the task.
    pub title: String,
    /// Free text, `""` when not given.
    pub description: String,
    /// Set by `PUT /tasks/{id}/complete`; kept by updates.
    pub completed: bool,
    /// Seconds since the Unix epoch, with sub-second precision.
    pub created_at: f64,
}

/// The body of `POST /tasks` and `PUT /tasks/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCreate {
    /// Required string.
    pub title: String,
    /// Optional string, default `""`.
    pub description: String,
}

/// One entry of a 422 `detail` list, in pydantic's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationError {
    /// pydantic's error type, e.g. `missing` or `string_type`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where the error is: `["body", "title"]`, `["path", "task_id"]`, `["body", 7]`.
    pub loc: Vec<Value>,
    /// pydantic's human-readable message for `kind`.
    pub msg: &'static str,
    /// The offending input (boxed, like `ctx`, to keep `Result<_, ValidationError>` small).
    pub input: Box<Value>,
    /// Extra context, present only for `json_invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Box<Value>>,
}

impl ValidationError {
    fn new(kind: &'static str, loc: Vec<Value>, msg: &'static str, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg,
            input: Box::new(input),
            ctx: None,
        }
    }

    fn missing(loc: Vec<Value>, input: Value) -> Self {
        Self::new("missing", loc, "Field required", input)
    }

    fn string_type(field: &str, input: Value) -> Self {
        Self::new(
            "string_type",
            vec!["body".into(), field.into()],
            "Input should be a valid string",
            input,
        )
    }

    fn model_attributes_type(input: Value) -> Self {
        Self::new(
            "model_attributes_type",
            vec!["body".into()],
            "Input should be a valid dictionary or object to extract fields from",
            input,
        )
    }

    /// FastAPI reports undecodable JSON with the character offset of the failure and an
    /// empty `input`, the decoder's message going into `ctx.error`.
    fn json_invalid(offset: usize, error: String) -> Self {
        Self {
            ctx: Some(Box::new(json!({ "error": error }))),
            ..Self::new(
                "json_invalid",
                vec!["body".into(), offset.into()],
                "JSON decode error",
                json!({}),
            )
        }
    }

    fn int_parsing(input: &str) -> Self {
        Self::new(
            "int_parsing",
            vec!["path".into(), "task_id".into()],
            "Input should be a valid integer, unable to parse string as an integer",
            input.into(),
        )
    }
}

impl TaskCreate {
    /// Validates a request body as FastAPI would for a `TaskCreate` parameter.
    ///
    /// FastAPI decodes the body as JSON when there is no content type or a JSON one
    /// (`application/json`, `application/*+json`); any other content type leaves the raw text,
    /// which then fails as "not an object". Every field error is reported, not just the first.
    pub fn from_body(
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, Vec<ValidationError>> {
        if body.is_empty() {
            return Err(vec![ValidationError::missing(
                vec!["body".into()],
                Value::Null,
            )]);
        }
        let value = if content_type.is_none_or(is_json_media_type) {
            decode_json(body).map_err(|error| vec![error])?
        } else {
            Value::String(String::from_utf8_lossy(body).into_owned())
        };
        let Value::Object(fields) = value else {
            return Err(vec![ValidationError::model_attributes_type(value)]);
        };
        Self::from_fields(&fields)
    }

    fn from_fields(fields: &Map<String, Value>) -> Result<Self, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let title = match fields.get("title") {
            Some(Value::String(title)) => Some(title.clone()),
            Some(other) => {
                errors.push(ValidationError::string_type("title", other.clone()));
                None
            }
            None => {
                let loc = vec!["body".into(), "title".into()];
                errors.push(ValidationError::missing(loc, Value::Object(fields.clone())));
                None
            }
        };
        let description = match fields.get("description") {
            Some(Value::String(description)) => description.clone(),
            Some(other) => {
                errors.push(ValidationError::string_type("description", other.clone()));
                String::new()
            }
            None => String::new(),
        };
        match title {
            Some(title) if errors.is_empty() => Ok(Self { title, description }),
            _ => Err(errors),
        }
    }
}

/// `application/json` or any `application/*+json`, parameters and case ignored.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(subtype) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

/// Decodes JSON, reporting failures at the 0-based *character* offset Python's decoder gives.
fn decode_json(body: &[u8]) -> Result<Value, ValidationError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        let valid = &body[..error.valid_up_to()];
        let offset = String::from_utf8_lossy(valid).chars().count();
        ValidationError::json_invalid(offset, "invalid UTF-8".to_owned())
    })?;
    serde_json::from_str(text).map_err(|error| {
        let offset = json_error_offset(text, &error);
        ValidationError::json_invalid(offset, error.to_string())
    })
}

/// serde_json reports the line and the column *after* the offending byte; Python reports the
/// offending character itself, and the end of the input when the input ended too soon.
fn json_error_offset(text: &str, error: &serde_json::Error) -> usize {
    if error.is_eof() {
        return text.chars().count();
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(error.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let mut byte = (line_start + error.column())
        .saturating_sub(1)
        .min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    text[..byte].chars().count()
}

/// Parses the `{task_id}` path segment as pydantic parses an `int` from a string.
///
/// Surrounding whitespace, a sign and a zero fraction (`"1.0"`) are accepted. `Ok(None)` is a
/// valid integer that cannot name a task (zero, negative, or beyond `u64`): the caller answers
/// 404 for those, as the seed does, and never fails on them.
pub fn parse_task_id(raw: &str) -> Result<Option<u64>, ValidationError> {
    let trimmed = raw.trim();
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let digits = match unsigned.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') => {
            whole
        }
        Some(_) => return Err(ValidationError::int_parsing(raw)),
        None => unsigned,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::int_parsing(raw));
    }
    if negative {
        return Ok(None);
    }
    Ok(digits.parse::<u64>().ok().filter(|&id| id > 0))
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(content_type: Option<&str>, body: &str) -> Vec<ValidationError> {
        match TaskCreate::from_body(content_type, body.as_bytes()) {
            Ok(task) => panic!("expected a validation error, got {task:?}"),
            Err(errors) => errors,
        }
    }

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn a_full_body_is_accepted() {
        let task = TaskCreate::from_body(JSON, br#"{"title":"a","description":"b"}"#);
        assert_eq!(
            task,
            Ok(TaskCreate {
                title: "a".into(),
                description: "b".into()
            })
        );
    }

    #[test]
    fn description_defaults_to_empty_and_unknown_fields_are_ignored() {
        let task = TaskCreate::from_body(JSON, br#"{"title":"a","id":7,"completed":true}"#);
        assert_eq!(
            task,
            Ok(TaskCreate {
                title: "a".into(),
                description: String::new()
            })
        );
    }

    #[test]
    fn json_media_types_with_parameters_and_suffixes_are_decoded() {
        for content_type in [
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(
                TaskCreate::from_body(Some(content_type), br#"{"title":"a"}"#).is_ok(),
                "{content_type}"
            );
        }
        assert!(TaskCreate::from_body(None, br#"{"title":"a"}"#).is_ok());
    }

    #[test]
    fn missing_title_reports_the_whole_object_as_input() {
        let errors = errors(JSON, r#"{"description":"d"}"#);
        let expected = json!([{"type":"missing","loc":["body","title"],"msg":"Field required","input":{"description":"d"}}]);
        assert_eq!(serde_json::to_value(errors).ok(), Some(expected));
    }

    #[test]
    fn every_field_error_is_reported() {
        let errors = errors(JSON, r#"{"title":null,"description":5}"#);
        let expected = json!([
            {"type":"string_type","loc":["body","title"],"msg":"Input should be a valid string","input":null},
            {"type":"string_type","loc":["body","description"],"msg":"Input should be a valid string","input":5},
        ]);
        assert_eq!(serde_json::to_value(errors).ok(), Some(expected));
    }

    #[test]
    fn a_non_object_body_is_model_attributes_type() {
        let errors = errors(JSON, "[1,2]");
        assert_eq!(errors[0].kind, "model_attributes_type");
        assert_eq!(errors[0].loc, vec![json!("body")]);
        assert_eq!(*errors[0].input, json!([1, 2]));
    }

    #[test]
    fn a_non_json_content_type_is_model_attributes_type_with_the_raw_text() {
        let errors = errors(
            Some("application/x-www-form-urlencoded"),
            r#"{"title":"a"}"#,
        );
        assert_eq!(errors[0].kind, "model_attributes_type");
        assert_eq!(*errors[0].input, json!(r#"{"title":"a"}"#));
    }

    #[test]
    fn an_empty_body_is_missing_at_body() {
        let errors = errors(JSON, "");
        assert_eq!(
            serde_json::to_value(errors).ok(),
            Some(json!([{"type":"missing","loc":["body"],"msg":"Field required","input":null}]))
        );
    }

    #[test]
    fn invalid_json_reports_python_character_offsets() {
        // Offsets are those of Python's json.JSONDecodeError.pos for the same documents.
        for (body, offset) in [
            (r#"{"title": }"#, 10),
            (r#"{"title": "x""#, 13),
            (r#"{"title":"x"} z"#, 14),
            ("   ", 3),
            ("{\n  \"title\" \"x\"}", 12),
            (r#"{"title": "é", }"#, 15),
        ] {
            let errors = errors(JSON, body);
            assert_eq!(errors[0].kind, "json_invalid", "{body}");
            assert_eq!(errors[0].loc, vec![json!("body"), json!(offset)], "{body}");
            assert_eq!(*errors[0].input, json!({}));
        }
    }

    #[test]
    fn invalid_utf8_is_json_invalid_at_the_first_bad_character() {
        let errors = TaskCreate::from_body(JSON, b"{\"title\":\"\xff\"}")
            .err()
            .unwrap_or_default();
        assert_eq!(errors[0].kind, "json_invalid");
        assert_eq!(errors[0].loc, vec![json!("body"), json!(10)]);
    }

    #[test]
    fn task_ids_parse_like_pydantic_ints() {
        for (raw, id) in [
            ("1", Some(1)),
            (" 7 ", Some(7)),
            ("+3", Some(3)),
            ("2.0", Some(2)),
            ("007", Some(7)),
        ] {
            assert_eq!(parse_task_id(raw), Ok(id), "{raw:?}");
        }
    }

    #[test]
    fn integers_that_cannot_name_a_task_parse_to_none() {
        for raw in ["0", "-1", "-0", "123456789012345678901234567890"] {
            assert_eq!(parse_task_id(raw), Ok(None), "{raw:?}");
        }
    }

    #[test]
    fn non_integers_are_int_parsing_errors() {
        for raw in ["abc", "1.5", "1e3", "", " ", "+", "0x10", "1."] {
            let error = parse_task_id(raw).err();
            assert_eq!(
                error.map(|e| (e.kind, e.input)),
                Some(("int_parsing", Box::new(json!(raw)))),
                "{raw:?}"
            );
        }
    }
}
