//! One behavioural contract, run against every backend: memory, redb, and Redis (a
//! `redis-server` of the test's own).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use test_support::RedisServer;

use super::memory::MemoryBackend;
use super::redb::RedbBackend;
use super::{Backend, LIST_PAGE_SIZE, StoreSpec, StoreTimeouts, Unavailable};

/// What a backend needs kept alive beside it, dropped after it.
type Kept = Box<dyn Any>;

/// Short, so that the outage tests are quick.
const TIMEOUTS: StoreTimeouts = StoreTimeouts {
    operation: Duration::from_millis(500),
    startup: Duration::from_secs(1),
};

fn backends() -> Vec<(&'static str, Arc<dyn Backend>, Kept)> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let redb =
        RedbBackend::open(&dir.path().join("nested/store.redb")).expect("a fresh redb store");
    let (redis, kept) = redis_backend();
    vec![
        ("memory", Arc::new(MemoryBackend::default()), Box::new(())),
        ("redb", Arc::new(redb), Box::new(dir)),
        ("redis", redis, kept),
    ]
}

/// The backends that page with an offset.
fn offset_backends() -> Vec<(&'static str, Arc<dyn Backend>, Kept)> {
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
    spec.open(timeouts).await
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

#[test]
fn buckets_are_separate_namespaces() -> anyhow::Result<()> {
    for (name, backend, _kept) in backends() {
        backend.set("a", "k", b"1")?;
        backend.set("b", "k", b"2")?;
        backend.set("", "k", b"3")?;
        assert_eq!(backend.get("a", "k")?, Some(b"1".to_vec()), "{name}");
        assert_eq!(
            backend.list_keys("b", 0)?,
            (vec!["k".to_owned()], None),
            "{name}"
        );
        // A bucket whose name is a prefix of another's must not see its keys.
        backend.set("ab", "x", b"")?;
        assert_eq!(
            backend.list_keys("a", 0)?,
            (vec!["k".to_owned()], None),
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
        let mut listed = Vec::new();
        let mut pages = 0;
        let mut cursor = Some(0);
        while let Some(at) = cursor {
            pages += 1;
            assert!(pages <= 100, "{name}: the cursor does not end");
            let (page, next) = backend.list_keys("", at)?;
            // Redis's COUNT is a hint: a reply may run a few keys over it.
            assert!(
                page.len() <= LIST_PAGE_SIZE + LIST_PAGE_SIZE / 10,
                "{name}: a page of {}",
                page.len()
            );
            listed.extend(page);
            cursor = next;
        }
        assert!(pages >= 3, "{name}: {pages} pages for three pages of keys");
        listed.sort_unstable();
        assert_eq!(listed, written, "{name}: every key exactly once");
    }
    Ok(())
}

#[test]
fn offsets_page_by_exactly_the_page_size() -> anyhow::Result<()> {
    for (name, backend, _kept) in offset_backends() {
        write_three_pages(backend.as_ref())?;
        let full = LIST_PAGE_SIZE as u64;
        let pages: Vec<(usize, Option<u64>)> = [0, full, 2 * full]
            .into_iter()
            .map(|offset| {
                let (page, next) = backend.list_keys("", offset)?;
                Ok((page.len(), next))
            })
            .collect::<anyhow::Result<_>>()?;
        assert_eq!(
            pages,
            [
                (LIST_PAGE_SIZE, Some(full)),
                (LIST_PAGE_SIZE, Some(2 * full)),
                (5, None)
            ],
            "{name}"
        );
        assert_eq!(
            backend.list_keys("", u64::MAX)?,
            (vec![], None),
            "{name}: cursor past the end"
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
            let (mut listed, next) = backend.list_keys(bucket, 0)?;
            listed.sort_unstable();
            let mut expected = keys.map(str::to_owned).to_vec();
            expected.sort_unstable();
            assert_eq!(
                (listed, next),
                (expected, None),
                "{name}: bucket {bucket:?}"
            );
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
        assert_eq!(backend.list_keys("", 0)?, (vec![], None), "{name}");
    }
    Ok(())
}

#[test]
fn redb_writes_survive_reopening() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    RedbBackend::open(&path)?.set("", "k", b"v")?;
    assert_eq!(RedbBackend::open(&path)?.get("", "k")?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_file_that_is_not_redb_is_refused_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    std::fs::write(&path, vec![b'x'; 8192])?;
    let message = format!(
        "{:#}",
        RedbBackend::open(&path)
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
