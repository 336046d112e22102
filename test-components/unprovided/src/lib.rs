//! # unprovided-import
//!
//! A test fixture: a `wasi:http` component that also imports `test:unprovided/greeter`, which
//! no host provides. `task-host serve` and `task-host check` must refuse it and name the import.
#![allow(
    unsafe_code,
    missing_docs,
    unreachable_pub,
    reason = "generated bindings"
)]

wit_bindgen::generate!({
    inline: r#"
        package test:unprovided;

        interface greeter {
            greet: func() -> string;
        }

        world unprovided {
            import greeter;
            export wasi:http/incoming-handler@0.2.12;
        }
    "#,
    path: "../../wit",
    world: "test:unprovided/unprovided",
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct Unprovided;

impl Guest for Unprovided {
    fn handle(_: IncomingRequest, _: ResponseOutparam) {
        // Calling the import keeps it in the component: unused imports are dropped at link time.
        eprintln!("{}", test::unprovided::greeter::greet());
    }
}

export!(Unprovided);
