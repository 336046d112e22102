//! The seed's models, `Task` and `TaskCreate`, and the 422 entries pydantic gives for the
//! bodies and ids the seed rejects: `missing`, `string_type`, `model_attributes_type`,
//! `json_invalid` and `int_parsing`.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// A stored task, serialized as the seed's pydantic model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) completed: bool,
    /// Seconds since the Unix epoch, as Python's `time.time()`.
    pub(crate) created_at: f64,
}

/// The body of `POST /tasks` and `PUT /tasks/{task_id}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskCreate {
    pub(crate) title: String,
    /// `""` when not given.
    pub(crate) description: String,
}

/// One entry of a 422's `detail` list, in pydantic's key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ValidationError {
    #[serde(rename = "type")]
    kind: &'static str,
    loc: Vec<Value>,
    msg: &'static str,
    input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctx: Option<Value>,
}

impl ValidationError {
    fn new(kind: &'static str, loc: Vec<Value>, msg: &'static str, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg,
            input,
            ctx: None,
        }
    }
}

impl TaskCreate {
    /// Validates a request body as FastAPI does for a `TaskCreate`: JSON unless the content
    /// type says otherwise (then the text, which is no object), every field error reported.
    pub(crate) fn from_body(
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, Vec<ValidationError>> {
        if body.is_empty() {
            let loc = vec!["body".into()];
            return Err(vec![ValidationError::new(
                "missing",
                loc,
                "Field required",
                Value::Null,
            )]);
        }
        let value = match content_type.is_none_or(is_json) {
            true => serde_json::from_slice(body).map_err(|error| vec![json_invalid(&error)])?,
            false => Value::String(String::from_utf8_lossy(body).into_owned()),
        };
        let Value::Object(fields) = value else {
            return Err(vec![ValidationError::new(
                "model_attributes_type",
                vec!["body".into()],
                "Input should be a valid dictionary or object to extract fields from",
                value,
            )]);
        };
        from_fields(&fields)
    }
}

fn from_fields(fields: &Map<String, Value>) -> Result<TaskCreate, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut text = |name: &str| match fields.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            errors.push(ValidationError::new(
                "string_type",
                vec!["body".into(), name.into()],
                "Input should be a valid string",
                other.clone(),
            ));
            None
        }
        None => None,
    };
    let title = text("title");
    let description = text("description");
    if title.is_none() && !fields.contains_key("title") {
        errors.insert(
            0,
            ValidationError::new(
                "missing",
                vec!["body".into(), "title".into()],
                "Field required",
                Value::Object(fields.clone()),
            ),
        );
    }
    match title {
        Some(title) if errors.is_empty() => Ok(TaskCreate {
            title,
            description: description.unwrap_or_default(),
        }),
        _ => Err(errors),
    }
}

/// `application/json` or any `application/*+json`, parameters and case ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

/// FastAPI's entry for undecodable JSON: where it failed (serde_json's column on its line;
/// Python counts characters from the start) and the decoder's message.
fn json_invalid(error: &serde_json::Error) -> ValidationError {
    ValidationError {
        ctx: Some(json!({ "error": error.to_string() })),
        ..ValidationError::new(
            "json_invalid",
            vec!["body".into(), error.column().saturating_sub(1).into()],
            "JSON decode error",
            json!({}),
        )
    }
}

/// A path's task id. One that is an integer but cannot be a task's (0, negative, huge) is
/// `Ok(None)`: no task has it.
pub(crate) fn parse_id(raw: &str) -> Result<Option<u64>, ValidationError> {
    match raw.trim().parse::<i128>() {
        Ok(id) => Ok(u64::try_from(id).ok().filter(|id| *id > 0)),
        Err(_) => Err(ValidationError::new(
            "int_parsing",
            vec!["path".into(), "task_id".into()],
            "Input should be a valid integer, unable to parse string as an integer",
            raw.into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TaskCreate, parse_id};

    fn errors(content_type: Option<&str>, body: &[u8]) -> serde_json::Value {
        let errors = TaskCreate::from_body(content_type, body).expect_err("invalid");
        serde_json::to_value(errors).expect("serializable")
    }

    #[test]
    fn a_title_is_required_and_a_description_optional() {
        let task = TaskCreate::from_body(None, br#"{"title":"x"}"#).expect("valid");
        assert_eq!((task.title.as_str(), task.description.as_str()), ("x", ""));
        assert_eq!(
            errors(Some("application/json"), br#"{"description":"d"}"#)[0]["loc"],
            json!(["body", "title"])
        );
    }

    #[test]
    fn every_field_error_is_reported_in_pydantic_shape() {
        let errors = errors(None, br#"{"title":1,"description":[]}"#);
        assert_eq!(errors[0]["type"], "string_type");
        assert_eq!(errors[0]["loc"], json!(["body", "title"]));
        assert_eq!(errors[1]["loc"], json!(["body", "description"]));
    }

    #[test]
    fn bodies_that_are_no_object_are_refused() {
        assert_eq!(errors(None, b"")[0]["type"], "missing");
        assert_eq!(errors(None, b"[1]")[0]["type"], "model_attributes_type");
        assert_eq!(errors(Some("text/plain"), b"{}")[0]["input"], "{}");
        assert_eq!(errors(None, b"{\"title\"")[0]["type"], "json_invalid");
    }

    #[test]
    fn ids_are_integers() {
        assert_eq!(parse_id("7"), Ok(Some(7)));
        assert_eq!(parse_id("0"), Ok(None));
        assert_eq!(parse_id("-3"), Ok(None));
        assert!(parse_id("abc").is_err());
    }
}
