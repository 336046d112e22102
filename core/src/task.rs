//! The seed's models and their validation live in `task-api-model`; the API names them from
//! here. Fuzzed here, against the API's own 422 rendering.

pub(crate) use task_api_model::{Task, TaskCreate, ValidationError, parse_task_id};

#[cfg(test)]
mod fuzz;
