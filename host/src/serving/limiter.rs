//! The per-request resource limiter: the one place `--max-memory` is enforced, and the
//! witness that a guest hit it, so that a failure it causes is told apart from other traps.

use wasmtime::ResourceLimiter;

/// Core instances one request may create. Real components use a handful (task_api.wasm: 4);
/// the bound keeps a hostile component from instantiating without end.
const MAX_INSTANCES: usize = 100;
/// Tables and memories one request may create, for the same reason.
const MAX_TABLES_OR_MEMORIES: usize = 100;

/// Caps each linear memory at `max_memory` bytes and remembers a refusal.
#[derive(Debug)]
pub(crate) struct Limiter {
    max_memory: usize,
    memory_refused: bool,
}

impl Limiter {
    /// A limiter capping each linear memory at `max_memory` bytes.
    pub(crate) fn new(max_memory: usize) -> Self {
        Self {
            max_memory,
            memory_refused: false,
        }
    }

    /// Whether a memory was refused growth past the cap.
    pub(crate) fn memory_refused(&self) -> bool {
        self.memory_refused
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Past the cap `memory.grow` fails; a Rust guest then aborts, which is a trap that
        // ends only this request.
        let allowed = desired <= self.max_memory;
        self.memory_refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES_OR_MEMORIES
    }

    fn memories(&self) -> usize {
        MAX_TABLES_OR_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() -> wasmtime::Result<()> {
        let mut limiter = Limiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None)?);
        assert!(!limiter.memory_refused());
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None)?);
        assert!(limiter.memory_refused());
        Ok(())
    }
}
