//! The request-body limit in force: the one the host states in [`MAX_BODY_ENV`], or
//! [`DEFAULT_MAX_BODY`]. `http` refuses bodies over it, since not every host does (stock
//! `wasmtime serve` refuses none), and the core's repository sizes its listing batches by it.

use std::env::VarError;
use std::fmt::Display;

use task_api_limits::{DEFAULT_MAX_BODY, MAX_BODY_ENV};

/// The limit the host gave this instance through its environment, in bytes.
pub(crate) fn max_body() -> usize {
    from_env(std::env::var(MAX_BODY_ENV))
}

/// The limit `var`, the variable as [`std::env::var`] read it, sets. Unset is the default;
/// so is a value that is not a decimal number of bytes, and that is logged, since a host
/// that sets the variable means to change the limit.
fn from_env(var: Result<String, VarError>) -> usize {
    let value = match var {
        Ok(value) => value,
        Err(VarError::NotPresent) => return DEFAULT_MAX_BODY,
        Err(VarError::NotUnicode(value)) => return ignored(&value.to_string_lossy(), "not UTF-8"),
    };
    match value.parse::<u64>() {
        // A limit past what the guest can address is no limit: memory runs out first.
        Ok(bytes) => usize::try_from(bytes).unwrap_or(usize::MAX),
        Err(error) => ignored(&value, error),
    }
}

/// Logs why `value` is not a limit, and falls back to the default.
fn ignored(value: &str, why: impl Display) -> usize {
    eprintln!(
        "WARNING: {MAX_BODY_ENV}={value:?} is not a number of bytes ({why}); \
         using the default, {DEFAULT_MAX_BODY}"
    );
    DEFAULT_MAX_BODY
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn the_host_sets_the_limit_in_decimal_bytes() {
        assert_eq!(from_env(Ok("8388608".to_owned())), 8 << 20);
        assert_eq!(from_env(Ok("0".to_owned())), 0);
        assert_eq!(from_env(Ok(u64::MAX.to_string())), usize::MAX);
    }

    #[test]
    fn an_unset_variable_is_the_default() {
        assert_eq!(from_env(Err(VarError::NotPresent)), DEFAULT_MAX_BODY);
    }

    #[test]
    fn a_value_that_is_not_a_byte_count_falls_back_to_the_default() {
        for value in ["", "8MiB", "-1", "1.5", " 1024"] {
            assert_eq!(
                from_env(Ok(value.to_owned())),
                DEFAULT_MAX_BODY,
                "{value:?}"
            );
        }
        let not_unicode = VarError::NotUnicode(OsString::from("1024"));
        assert_eq!(from_env(Err(not_unicode)), DEFAULT_MAX_BODY);
    }
}
