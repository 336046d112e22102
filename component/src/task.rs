//! The seed's models and their validation live in `task-api-model`, shared with the native
//! baseline of the bench; the component names them from here. Fuzzed here, against the
//! component's own 422 rendering.

pub(crate) use task_api_model::{Task, TaskCreate, ValidationError, parse_task_id};

#[cfg(test)]
mod fuzz;
