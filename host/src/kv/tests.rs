//! One behavioural contract, run against every backend: memory, redb, and Redis (a
//! `redis-server` of the test's own).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use test_support::RedisServer;

use super::backend::{Backend, KeyPage, LIST_PAGE_SIZE, Unavailable};
use super::memory::MemoryBackend;
use super::redb::RedbBackend;
use super::spec::{StoreSpec, StoreTimeouts};
use super::write::Write;

/// What a backend needs kept alive beside it, dropped after it.
type Kept = Box<dyn Any>;

/// Short, so that the outage tests are quick.
const TIMEOUTS: StoreTimeouts = StoreTimeouts {
    operation: Duration::from_millis(500),
    startup: Duration::from_secs(1),
};

/// A redb store at `path`, its batches unobserved.
pub(super) fn redb_at(path: &std::path::Path) -> anyhow::Result<RedbBackend> {
    RedbBackend::open(path, Box::new(|_| {}))
}

fn backends() -> Vec<(&'static str, Arc<dyn Backend>, Kept)> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let redb = redb_at(&dir.path().join("nested/store.redb")).expect("a fresh redb store");
    let (redis, kept) = redis_backend();
    vec![
        ("memory", Arc::new(MemoryBackend::default()), Box::new(())),
        ("redb", Arc::new(redb), Box::new(dir)),
        ("redis", redis, kept),
    ]
}

/// The backends that list in key order, continuing after the key their cursor names. Redis
/// lists in `SCAN`'s order, which is no order.
fn ordered_backends() -> Vec<(&'static str, Arc<dyn Backend>, Kept)> {
    let mut backends = backends();
    backends.retain(|(name, _, _)| *name != "redis");
    backends
}

/// A Redis backend on a `redis-server` of its own, and the server and the runtime the
/// connection runs on, to keep.
fn redis_backend() -> (Arc<dyn Backend>, Kept) {
    let server = RedisServer::start().expect("redis-server starts");
    let runtime = redis_runtime();
    let backend = runtime
        .block_on(open_redis(&server.url(), TIMEOUTS))
        .expect("the Redis store opens");
    (backend, Box::new((server, runtime)))
}

/// The Redis backend blocks blocking-pool threads on its runtime, so it needs one with a
/// worker of its own; the tests call it from plain threads.
fn redis_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn open_redis(url: &str, timeouts: StoreTimeouts) -> anyhow::Result<Arc<dyn Backend>> {
    let spec: StoreSpec = url.parse().map_err(anyhow::Error::msg)?;
    spec.open(timeouts, false, Box::new(|_| {})).await
}

#[test]
fn values_round_trip_and_delete() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        assert_eq!(backend.get("", "k")?, None, "{name}");
        backend.set("", "k", b"v")?;
        assert_eq!(backend.get("", "k")?, Some(b"v".to_vec()), "{name}");
        assert!(backend.exists("", "k")?, "{name}");
        backend.delete("", "k")?;
        backend.delete("", "k")?;
        assert!(!backend.exists("", "k")?, "{name}");
    }
    Ok(())
}

/// Every key of `bucket`, following the cursors, and the size of each page.
fn list_all(backend: &dyn Backend, bucket: &str) -> anyhow::Result<(Vec<String>, Vec<usize>)> {
    let (mut keys, mut pages) = (Vec::new(), Vec::new());
    let mut cursor = None;
    loop {
        anyhow::ensure!(pages.len() < 100, "the cursor does not end: {pages:?}");
        let page = backend.list_keys(bucket, cursor.as_deref())?;
        pages.push(page.keys.len());
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((keys, pages)),
        }
    }
}

#[test]
fn buckets_are_separate_namespaces() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        backend.set("a", "k", b"1")?;
        backend.set("b", "k", b"2")?;
        backend.set("", "k", b"3")?;
        assert_eq!(backend.get("a", "k")?, Some(b"1".to_vec()), "{name}");
        assert_eq!(
            backend.list_keys("b", None)?,
            KeyPage {
                keys: vec!["k".to_owned()],
                cursor: None
            },
            "{name}"
        );
        // A bucket whose name is a prefix of another's must not see its keys.
        backend.set("ab", "x", b"")?;
        assert_eq!(
            backend.list_keys("a", None)?,
            KeyPage {
                keys: vec!["k".to_owned()],
                cursor: None
            },
            "{name}"
        );
    }
    Ok(())
}

/// Writes `2 * LIST_PAGE_SIZE + 5` keys to the default bucket and one to bucket `b`.
fn write_three_pages(backend: &dyn Backend) -> anyhow::Result<Vec<String>> {
    let keys: Vec<(String, Vec<u8>)> = (0..2 * LIST_PAGE_SIZE + 5)
        .map(|i| (format!("k{i:05}"), vec![]))
        .collect();
    backend.set_many("", &keys)?;
    // A key in the next bucket, which the last page must not run on into.
    backend.set("b", "k", b"")?;
    Ok(keys.into_iter().map(|(key, _)| key).collect())
}

#[test]
fn list_keys_lists_every_key_once_across_pages() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        let written = write_three_pages(backend.as_ref())?;
        let (mut listed, pages) = list_all(backend.as_ref(), "")?;
        assert!(
            pages.len() >= 3,
            "{name}: {pages:?} for three pages of keys"
        );
        // Redis's COUNT is a hint: a reply may run a few keys over it.
        let largest = pages.iter().copied().max().unwrap_or_default();
        assert!(
            largest <= LIST_PAGE_SIZE + LIST_PAGE_SIZE / 10,
            "{name}: a page of {largest}"
        );
        listed.sort_unstable();
        assert_eq!(listed, written, "{name}: every key exactly once");
    }
    Ok(())
}

#[test]
fn list_keys_pages_in_key_order_with_a_cursor() -> anyhow::Result<()> {
    for (name, backend, _kept) in ordered_backends() {
        let keys: Vec<(String, Vec<u8>)> = (0..2 * LIST_PAGE_SIZE + 5)
            .rev()
            .map(|i| (format!("k{i:05}"), vec![]))
            .collect();
        backend.set_many("", &keys)?;
        // A key in the next bucket, which the last page must not run on into.
        backend.set("b", "k", b"")?;
        let (listed, pages) = list_all(backend.as_ref(), "")?;
        assert_eq!(pages, [LIST_PAGE_SIZE, LIST_PAGE_SIZE, 5], "{name}");
        let mut written: Vec<String> = keys.into_iter().map(|(key, _)| key).collect();
        written.sort_unstable();
        assert_eq!(listed, written, "{name}: every key once, in order");
        assert_eq!(
            list_all(backend.as_ref(), "empty")?,
            (vec![], vec![0]),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn a_listing_resumes_after_its_cursor_whatever_happened_before_it() -> anyhow::Result<()> {
    for (name, backend, _kept) in ordered_backends() {
        let keys: Vec<(String, Vec<u8>)> = (0..LIST_PAGE_SIZE + 3)
            .map(|i| (format!("k{i:05}"), vec![]))
            .collect();
        backend.set_many("", &keys)?;
        let first = backend.list_keys("", None)?;
        let cursor = first.cursor.expect("a second page");
        // An offset would now point past keys nobody has listed; the cursor does not.
        backend.delete_many("", &first.keys[..10])?;
        backend.set("", "a-new-first-key", b"")?;
        let rest = backend.list_keys("", Some(&cursor))?;
        let expected: Vec<String> = keys[LIST_PAGE_SIZE..]
            .iter()
            .map(|(key, _)| key.clone())
            .collect();
        assert_eq!(
            rest,
            KeyPage {
                keys: expected,
                cursor: None
            },
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn any_key_and_bucket_name_round_trips_and_lists() -> anyhow::Result<()> {
    let keys = ["", "a:b", "*", "[x]?", "\\", "ключ 🔑", "kv:0::k"];
    for (name, backend, _kept) in backends() {
        for bucket in ["", "a*", "a", "[", "kv:0:"] {
            for key in keys {
                backend.set(bucket, key, format!("{bucket}/{key}").as_bytes())?;
            }
        }
        for bucket in ["", "a*", "a", "[", "kv:0:"] {
            for key in keys {
                assert_eq!(
                    backend.get(bucket, key)?,
                    Some(format!("{bucket}/{key}").into_bytes()),
                    "{name}: {bucket:?} {key:?}"
                );
            }
            let (mut listed, _) = list_all(backend.as_ref(), bucket)?;
            listed.sort_unstable();
            let mut expected = keys.map(str::to_owned).to_vec();
            expected.sort_unstable();
            assert_eq!(listed, expected, "{name}: bucket {bucket:?}");
        }
    }
    Ok(())
}

#[test]
fn increment_counts_from_zero_in_decimal() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        assert_eq!(backend.increment("", "n", 1)?, 1, "{name}");
        assert_eq!(backend.increment("", "n", 41)?, 42, "{name}");
        assert_eq!(backend.get("", "n")?, Some(b"42".to_vec()), "{name}");
        backend.set("", "bad", b"x")?;
        assert!(
            backend.increment("", "bad", 1).is_err(),
            "{name}: not a counter"
        );
        backend.set("", "max", u64::MAX.to_string().as_bytes())?;
        assert!(backend.increment("", "max", 1).is_err(), "{name}: overflow");
    }
    Ok(())
}

#[test]
fn concurrent_increments_never_repeat() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let backend = Arc::clone(&backend);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| backend.increment("", "n", 1))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut seen = Vec::new();
        for thread in threads {
            seen.extend(
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("thread panicked"))??,
            );
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=200).collect::<Vec<u64>>(), "{name}");
    }
    Ok(())
}

#[test]
fn batches_read_and_delete_in_order() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        backend.set_many(
            "",
            &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
        )?;
        let keys = ["b".to_owned(), "zz".to_owned(), "a".to_owned()];
        assert_eq!(
            backend.get_many("", &keys)?,
            vec![Some(b"2".to_vec()), None, Some(b"1".to_vec())],
            "{name}"
        );
        backend.delete_many("", &keys)?;
        assert_eq!(backend.list_keys("", None)?, KeyPage::default(), "{name}");
    }
    Ok(())
}

#[test]
fn writes_awaited_without_a_thread_keep_the_same_contract() -> anyhow::Result<()> {
    // The tests call the blocking methods from plain threads, as the blocking pool would;
    // each awaited write gets a runtime of its own to run on.
    let runtime = redis_runtime();
    for (name, backend, _kept) in backends() {
        let write =
            |write: Write| runtime.block_on(Arc::clone(&backend).write("b".to_owned(), write));
        let increment = |delta| Write::Increment {
            key: "n".into(),
            delta,
        };
        assert_eq!(write(increment(2))?, 2, "{name}");
        assert_eq!(write(increment(1))?, 3, "{name}");
        let set = Write::Set {
            key: "k".into(),
            value: b"v".to_vec(),
        };
        assert_eq!(write(set)?, 0, "{name}");
        assert_eq!(backend.get("b", "k")?, Some(b"v".to_vec()), "{name}");
        let refused = write(Write::Increment {
            key: "k".into(),
            delta: 1,
        });
        assert!(refused.is_err(), "{name}: not a counter");
        let pairs = vec![
            ("x".to_owned(), b"1".to_vec()),
            ("y".to_owned(), b"2".to_vec()),
        ];
        write(Write::SetMany(pairs))?;
        write(Write::DeleteMany(vec!["x".into(), "n".into()]))?;
        write(Write::Delete { key: "k".into() })?;
        let (keys, _) = list_all(backend.as_ref(), "b")?;
        assert_eq!(keys, ["y"], "{name}");
    }
    Ok(())
}

#[test]
fn redb_writes_survive_reopening() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    redb_at(&path)?.set("", "k", b"v")?;
    assert_eq!(redb_at(&path)?.get("", "k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_file_that_is_not_redb_is_refused_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    std::fs::write(&path, vec![b'x'; 8192])?;
    let message = format!(
        "{:#}",
        redb_at(&path)
            .err()
            .ok_or_else(|| anyhow::anyhow!("opened garbage"))?
    );
    assert!(message.contains("cannot open the store"), "{message}");
    Ok(())
}

#[test]
fn store_specs_parse() {
    assert_eq!("memory".parse(), Ok(StoreSpec::Memory));
    assert_eq!(
        "redb:/data/x.redb".parse(),
        Ok(StoreSpec::Redb("/data/x.redb".into()))
    );
    assert_eq!(
        "redis://redis:6379"
            .parse::<StoreSpec>()
            .map(|spec| spec.to_string()),
        Ok("redis://redis:6379/0".to_owned())
    );
    for bad in [
        "redb:",
        "redis:x",
        "",
        "mem",
        "redis://",
        "redis://h:notaport",
    ] {
        assert!(bad.parse::<StoreSpec>().is_err(), "{bad}");
    }
}

#[test]
fn a_stopped_redis_fails_fast_as_unavailable_and_is_reconnected_to() -> anyhow::Result<()> {
    let mut server = RedisServer::start()?;
    let runtime = redis_runtime();
    let backend = runtime.block_on(open_redis(&server.url(), TIMEOUTS))?;
    backend.set("", "k", b"v")?;
    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let error = backend.get("", "k").expect_err("Redis is gone");
        assert!(error.is::<Unavailable>(), "{error:#}");
        assert!(
            started.elapsed() < TIMEOUTS.operation + Duration::from_millis(250),
            "took {:?}",
            started.elapsed()
        );
    }
    server.start_again()?;
    // The command after Redis returns may still meet the broken connection; it replaces it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let value = loop {
        match backend.get("", "k") {
            Ok(value) => break value,
            Err(error) if Instant::now() < deadline => assert!(error.is::<Unavailable>()),
            Err(error) => return Err(error.context("not back within 5 s")),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(value, Some(b"v".to_vec()), "the append-only file kept it");
    Ok(())
}

#[test]
fn a_redis_that_never_answers_is_given_up_on_after_the_wait() {
    let port = test_support::free_port().expect("a port nothing listens on");
    let runtime = redis_runtime();
    let started = Instant::now();
    let error = runtime
        .block_on(open_redis(&format!("redis://127.0.0.1:{port}"), TIMEOUTS))
        .err()
        .expect("nothing to connect to");
    let waited = started.elapsed();
    let message = format!("{error:#}");
    assert!(
        message.starts_with(&format!(
            "cannot reach the store redis://127.0.0.1:{port}/0 ("
        )),
        "{message}"
    );
    assert!(message.contains("gave up after"), "{message}");
    assert!(
        waited >= Duration::from_millis(500) && waited < TIMEOUTS.startup * 2,
        "gave up after {waited:?}"
    );
}

#[test]
fn a_value_that_is_not_a_counter_is_not_an_outage() -> anyhow::Result<()> {
    let (backend, _kept) = redis_backend();
    backend.set("", "text", b"x")?;
    let error = backend.increment("", "text", 1).expect_err("not a counter");
    assert!(!error.is::<Unavailable>(), "{error:#}");
    Ok(())
}
