//! One behavioural contract, run against every backend.

use std::sync::Arc;

use super::memory::MemoryBackend;
use super::redb::RedbBackend;
use super::{Backend, KeyPage, LIST_PAGE_SIZE, StoreSpec, Write};

/// A redb store at `path`, its batches unobserved.
pub(super) fn redb_at(path: &std::path::Path) -> anyhow::Result<RedbBackend> {
    RedbBackend::open(path, Box::new(|_| {}))
}

fn backends() -> Vec<(&'static str, Arc<dyn Backend>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let redb = redb_at(&dir.path().join("nested/store.redb")).expect("a fresh redb store");
    vec![
        ("memory", Arc::new(MemoryBackend::default()), None),
        ("redb", Arc::new(redb), Some(dir)),
    ]
}

#[test]
fn values_round_trip_and_delete() -> anyhow::Result<()> {
    for (name, backend, _dir) in backends() {
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
    for (name, backend, _dir) in backends() {
        backend.set("a", "k", b"1")?;
        backend.set("b", "k", b"2")?;
        backend.set("", "k", b"3")?;
        assert_eq!(backend.get("a", "k")?, Some(b"1".to_vec()), "{name}");
        let only_k = KeyPage {
            keys: vec!["k".to_owned()],
            cursor: None,
        };
        assert_eq!(backend.list_keys("b", None)?, only_k, "{name}");
        // A bucket whose name is a prefix of another's must not see its keys.
        backend.set("ab", "x", b"")?;
        assert_eq!(backend.list_keys("a", None)?, only_k, "{name}");
    }
    Ok(())
}

#[test]
fn list_keys_pages_in_key_order_with_a_cursor() -> anyhow::Result<()> {
    for (name, backend, _dir) in backends() {
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
    for (name, backend, _dir) in backends() {
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
fn increment_counts_from_zero_in_decimal() -> anyhow::Result<()> {
    for (name, backend, _dir) in backends() {
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
    for (name, backend, _dir) in backends() {
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
    for (name, backend, _dir) in backends() {
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

#[tokio::test(flavor = "multi_thread")]
async fn writes_awaited_without_a_thread_keep_the_same_contract() -> anyhow::Result<()> {
    for (name, backend, _dir) in backends() {
        let write = |write: Write| Arc::clone(&backend).write("b".to_owned(), write);
        assert_eq!(
            write(Write::Increment {
                key: "n".into(),
                delta: 2
            })
            .await?,
            2,
            "{name}"
        );
        assert_eq!(
            write(Write::Increment {
                key: "n".into(),
                delta: 1
            })
            .await?,
            3,
            "{name}"
        );
        let set = Write::Set {
            key: "k".into(),
            value: b"v".to_vec(),
        };
        assert_eq!(write(set).await?, 0, "{name}");
        assert_eq!(backend.get("b", "k")?, Some(b"v".to_vec()), "{name}");
        let refused = write(Write::Increment {
            key: "k".into(),
            delta: 1,
        })
        .await;
        assert!(refused.is_err(), "{name}: not a counter");
        let pairs = vec![
            ("x".to_owned(), b"1".to_vec()),
            ("y".to_owned(), b"2".to_vec()),
        ];
        write(Write::SetMany(pairs)).await?;
        write(Write::DeleteMany(vec!["x".into(), "n".into()])).await?;
        write(Write::Delete { key: "k".into() }).await?;
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
    for bad in ["redb:", "redis:x", "", "mem"] {
        assert!(bad.parse::<StoreSpec>().is_err(), "{bad}");
    }
}
