//! The tasks, by id, behind a read-write lock: shared by every request of the process and
//! gone when it exits, as the seed's module-level list is.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use task_api_model::{Task, TaskCreate};

/// See the module docs. Reads share the lock, so listings do not queue behind one another.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The last id handed out: ids start at 1 and are never reused.
    last_id: u64,
    tasks: BTreeMap<u64, Task>,
}

// Every update is one insert, change or remove, so a panic while the lock was held cannot
// have left the map half-written: both guards ignore poisoning.
impl Tasks {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a new task made at `now`.
    pub(crate) fn create(&self, input: TaskCreate, now: f64) -> Task {
        let mut state = self.write();
        state.last_id += 1;
        let task = Task {
            id: state.last_id,
            title: input.title,
            description: input.description,
            completed: false,
            created_at: now,
        };
        state.tasks.insert(task.id, task.clone());
        task
    }

    /// Every task, in id order, as a JSON array.
    pub(crate) fn list_json(&self) -> serde_json::Result<Vec<u8>> {
        let state = self.read();
        serde_json::to_vec(&state.tasks.values().collect::<Vec<_>>())
    }

    pub(crate) fn get(&self, id: u64) -> Option<Task> {
        self.read().tasks.get(&id).cloned()
    }

    /// Runs `change` on the task with `id`, if there is one, and returns the result.
    pub(crate) fn change(&self, id: u64, change: impl FnOnce(&mut Task)) -> Option<Task> {
        let mut state = self.write();
        let task = state.tasks.get_mut(&id)?;
        change(task);
        Some(task.clone())
    }

    /// Removes the task with `id`; whether there was one.
    pub(crate) fn remove(&self, id: u64) -> bool {
        self.write().tasks.remove(&id).is_some()
    }
}
