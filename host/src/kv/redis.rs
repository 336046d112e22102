//! `--store redis://HOST:PORT[/DB]` (or `rediss://` for TLS): one Redis that every replica of
//! task-host shares, so that a load balancer may send any request to any replica.
//!
//! How wasi:keyvalue 0.2.0-draft maps onto Redis:
//!
//! | wasi:keyvalue                   | Redis                                                  |
//! |---------------------------------|--------------------------------------------------------|
//! | key `k` in bucket `b`           | the Redis key [`Namespace::key`]: `kv:{len(b)}:{b}:{k}` |
//! | `get`, `set`, `delete`, `exists` | `GET`, `SET`, `DEL`, `EXISTS`                          |
//! | `increment`                     | `INCRBY` on a decimal string, the encoding of the memory and redb stores and kv-fs |
//! | `get-many`, `set-many`, `delete-many` | `MGET`; the `SET`s pipelined in `MULTI`/`EXEC`; one `DEL` |
//! | `list-keys`                     | `SCAN` with `MATCH` on the bucket's prefix; Redis's cursor is ours |
//!
//! **Durability** is Redis's: with AOF and `appendfsync always` a write is on disk before
//! Redis answers, as with redb; with `everysec` a power loss or a crash of Redis itself may
//! take the last second or two of acknowledged writes (Redis may hold its AOF write back
//! while an fsync runs); without persistence a Redis restart loses everything.
//!
//! **Connection.** One multiplexed connection (redis-rs's `ConnectionManager`) carries every
//! request's commands, pipelined. Connecting and every command are bounded by the store
//! timeout. A connection that breaks is replaced on the next command, with one connection
//! attempt and no backoff, so that while Redis is away each request fails at once rather than
//! queueing behind a reconnect schedule, and the first command after Redis returns reconnects.
//!
//! **Failures.** An error that says nothing about the request (Redis refused, dropped or did
//! not answer in time, or asked to try again, as while it loads its data) carries the
//! [`Unavailable`] marker, which turns the request into a 503 (see [`super::wit`]); any other
//! error (a value that is not a counter) is the guest's to handle.
//!
//! The [`Backend`] trait is synchronous, as redb is, and its calls run on tokio's blocking
//! pool. This backend blocks that thread on the async command, on the runtime it was opened on.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, ConnectionAddr, IntoConnectionInfo as _, RedisError, RetryMethod};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;

use super::backend::{Backend, KeyPage, LIST_PAGE_SIZE, Unavailable};

/// At startup, the pause between attempts to reach Redis.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// At most this many `SCAN` calls fill one `list-keys` page. A bucket's keys may be sparse
/// among other buckets' keys; past this the page is returned as it is, perhaps empty, with its
/// cursor, so that one host call stays short.
const MAX_SCANS_PER_PAGE: usize = 16;

/// A `redis://` or `rediss://` URL that redis-rs accepts, as `--store` takes it. It shows
/// without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// `spec` if it is a Redis URL redis-rs can connect with; `None` if it is not a Redis URL
    /// at all.
    pub(crate) fn parse(spec: &str) -> Option<Result<Self, String>> {
        if !(spec.starts_with("redis://") || spec.starts_with("rediss://")) {
            return None;
        }
        Some(match spec.into_connection_info() {
            Ok(_) => Ok(Self(spec.to_owned())),
            Err(error) => Err(format!("invalid Redis URL {}: {error}", redacted(spec))),
        })
    }
}

/// `spec` with the password of any `scheme://user:password@` in it masked, for errors about
/// text that did not parse: `user:***@`, or `***@` where the user info has no colon (Redis
/// takes a lone user info as a password).
pub(crate) fn redacted(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let Some((user_info, _)) = authority.rsplit_once('@') else {
        return spec.to_owned();
    };
    let masked = match user_info.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{masked}{}", &rest[user_info.len()..])
}

/// Refuses a Redis that evicts keys under memory pressure, unless `allow`: an evicted id
/// counter hands out ids again, and new tasks overwrite old ones. The `allkeys-*` policies
/// evict any key; `volatile-*` ones only keys with an expiry, and the store sets none.
/// A Redis that will not say (`CONFIG` is often disabled on managed services) is a warning.
async fn check_eviction(
    connection: &mut ConnectionManager,
    url: &RedisUrl,
    timeout: Duration,
    allow: bool,
) -> anyhow::Result<()> {
    let mut command = redis::cmd("CONFIG");
    command.arg("GET").arg("maxmemory-policy");
    let asked = command.query_async::<Vec<String>>(connection);
    let read = match tokio::time::timeout(timeout, asked).await {
        Ok(Ok(reply)) => Ok(reply.into_iter().nth(1)),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer in time".to_owned()),
    };
    let policy = match read {
        Ok(policy) => policy,
        Err(reason) => {
            tracing::warn!(%url, "cannot read the store's maxmemory-policy ({reason}); make sure it evicts no keys");
            return Ok(());
        }
    };
    let Some(policy) = policy.filter(|policy| policy.starts_with("allkeys-")) else {
        return Ok(());
    };
    anyhow::ensure!(
        allow,
        "the store {url} evicts keys (maxmemory-policy {policy}), which would lose tasks and \
         hand out their ids again: set it to noeviction, or pass --redis-allow-eviction true"
    );
    tracing::warn!(%url, policy, "the store may evict keys (--redis-allow-eviction)");
    Ok(())
}

/// The URL without its password, for logs and errors.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(info) = self.0.as_str().into_connection_info() else {
            return f.write_str("redis://(invalid)");
        };
        let scheme = match info.addr() {
            ConnectionAddr::TcpTls { .. } => "rediss",
            _ => "redis",
        };
        let settings = info.redis_settings();
        let user = match (settings.username(), settings.password()) {
            (Some(name), _) => format!("{name}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            (None, None) => String::new(),
        };
        write!(f, "{scheme}://{user}{}/{}", info.addr(), settings.db())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// See the module docs.
pub(crate) struct RedisBackend {
    connection: ConnectionManager,
    runtime: Handle,
    timeout: Duration,
}

impl RedisBackend {
    /// Connects to `url`, trying again until `wait` has passed while Redis cannot be reached
    /// (so that the order in which containers start does not matter). Each attempt, and
    /// later each command, may take `timeout`. Must run on a multi-thread runtime: the
    /// backend's calls block blocking-pool threads on it.
    pub(crate) async fn connect(
        url: &RedisUrl,
        timeout: Duration,
        wait: Duration,
        allow_eviction: bool,
    ) -> anyhow::Result<Self> {
        let runtime = Handle::current();
        anyhow::ensure!(
            runtime.runtime_flavor() == RuntimeFlavor::MultiThread,
            "the Redis store needs a multi-thread tokio runtime"
        );
        let client = redis::Client::open(url.0.as_str())
            .with_context(|| format!("invalid Redis URL {url}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        let deadline = Instant::now() + wait;
        let mut attempts = 0_u32;
        loop {
            attempts += 1;
            let attempt = async {
                let mut connection =
                    ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                // Connected is not ready: a Redis loading its data answers LOADING.
                redis::cmd("PING")
                    .query_async::<()>(&mut connection)
                    .await?;
                Ok::<_, RedisError>(connection)
            };
            let error = match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(mut connection)) => {
                    if attempts > 1 {
                        tracing::info!(%url, attempts, "reached the store");
                    }
                    check_eviction(&mut connection, url, timeout, allow_eviction).await?;
                    return Ok(Self {
                        connection,
                        runtime,
                        timeout,
                    });
                }
                Ok(Err(error)) if !is_unavailability(&error) => {
                    anyhow::bail!("cannot use the store {url}: {error}")
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {}", humantime::format_duration(timeout)),
            };
            if Instant::now() + CONNECT_RETRY_PAUSE >= deadline {
                anyhow::bail!(
                    "cannot reach the store {url} ({error}); gave up after {attempts} attempts in {}",
                    humantime::format_duration(wait)
                );
            }
            if attempts == 1 {
                tracing::warn!(%url, "the store is not reachable yet ({error}); retrying for up to {}", humantime::format_duration(wait));
            }
            tokio::time::sleep(CONNECT_RETRY_PAUSE).await;
        }
    }

    /// Runs one command (or pipeline) on the shared connection, within the timeout.
    fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut ConnectionManager) -> Result<T, RedisError>,
    ) -> anyhow::Result<T> {
        let mut connection = self.connection.clone();
        // The timer is made inside the runtime: it needs the runtime's time driver.
        let answered = self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, command(&mut connection)).await });
        match answered {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if is_unavailability(&error) => {
                Err(anyhow::Error::new(error).context(Unavailable))
            }
            Ok(Err(error)) => Err(error.into()),
            Err(_) => Err(anyhow::anyhow!(
                "Redis did not answer within {}",
                humantime::format_duration(self.timeout)
            )
            .context(Unavailable)),
        }
    }
}

/// Whether `error` says Redis cannot serve anyone right now, rather than that this command
/// was wrong: redis-rs suggests retrying (refused, dropped, timed out, LOADING, TRYAGAIN…)
/// for the first and never for the second (WRONGTYPE, a value that is not an integer).
fn is_unavailability(error: &RedisError) -> bool {
    error.is_io_error() || !matches!(error.retry_method(), RetryMethod::NoRetry)
}

/// A bucket's part of the Redis key space.
///
/// The bucket's length in bytes comes first, so that no bucket's prefix is a prefix of
/// another's: bucket `a` is `kv:1:a:` and bucket `ab` is `kv:2:ab:`, and `a` cannot see a key
/// of `ab`, whatever bytes the names and keys hold.
struct Namespace {
    prefix: String,
}

impl Namespace {
    fn of(bucket: &str) -> Self {
        Self {
            prefix: format!("kv:{}:{bucket}:", bucket.len()),
        }
    }

    /// The Redis key of `key` in this bucket.
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The `SCAN MATCH` pattern of every key in this bucket: the prefix with glob's special
    /// characters escaped (bucket names may hold any of them), then `*`.
    fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 2);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// The guest's key behind a Redis key `SCAN` returned for [`Self::pattern`].
    fn guest_key(&self, stored: &[u8]) -> Option<String> {
        let key = stored.strip_prefix(self.prefix.as_bytes())?;
        String::from_utf8(key.to_vec()).ok()
    }
}

impl Backend for RedisBackend {
    fn get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let key = Namespace::of(bucket).key(key);
        self.run(async |redis| redis.get(key).await)
    }

    fn set(&self, bucket: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let key = Namespace::of(bucket).key(key);
        self.run(async |redis| redis.set(key, value).await)
    }

    fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        let key = Namespace::of(bucket).key(key);
        self.run(async |redis| redis.del(key).await)
    }

    fn exists(&self, bucket: &str, key: &str) -> anyhow::Result<bool> {
        let key = Namespace::of(bucket).key(key);
        self.run(async |redis| redis.exists(key).await)
    }

    /// One page of `SCAN` over the bucket's prefix, and Redis's cursor for the next one.
    ///
    /// The backend's cursor is Redis's, in decimal: `None` starts a scan (Redis's `0`), and
    /// the cursor returned continues it; Redis returns `0` when it is over (our `None`). The
    /// guest never sees it: [`super::cursor::Cursors`] hands it a number standing for it.
    ///
    /// What `SCAN` promises, and so what this does: every key present for the whole scan is
    /// listed; a key may be listed twice if Redis resizes its table meanwhile (each page is
    /// deduplicated, not the scan); a page holds up to about [`LIST_PAGE_SIZE`] keys (`COUNT`
    /// is a hint: a reply may run a few keys over), sorted, and may be empty before the end; a
    /// cursor Redis never gave lists an arbitrary part of the bucket, never another bucket.
    fn list_keys(&self, bucket: &str, cursor: Option<&str>) -> anyhow::Result<KeyPage> {
        let namespace = Namespace::of(bucket);
        let pattern = namespace.pattern();
        let mut keys = BTreeSet::new();
        // SCAN's cursor, in decimal; the host only hands back what this method returned.
        let mut cursor: u64 = match cursor {
            Some(cursor) => cursor
                .parse()
                .with_context(|| format!("{cursor:?} is not a Redis SCAN cursor"))?,
            None => 0,
        };
        for _ in 0..MAX_SCANS_PER_PAGE {
            let (next, stored): (u64, Vec<Vec<u8>>) = self.run(async |redis| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(LIST_PAGE_SIZE)
                    .query_async(redis)
                    .await
            })?;
            keys.extend(stored.iter().filter_map(|key| namespace.guest_key(key)));
            cursor = next;
            if cursor == 0 || !keys.is_empty() {
                break;
            }
        }
        Ok(KeyPage {
            keys: keys.into_iter().collect(),
            cursor: (cursor != 0).then(|| cursor.to_string()),
        })
    }

    fn increment(&self, bucket: &str, key: &str, delta: u64) -> anyhow::Result<u64> {
        let stored = Namespace::of(bucket).key(key);
        // Redis counters are signed 64-bit integers.
        let delta = i64::try_from(delta)
            .with_context(|| format!("the Redis store cannot add {delta} (over i64::MAX)"))?;
        let value: i64 = self
            .run(async |redis| redis.incr(stored, delta).await)
            .with_context(|| format!("incrementing {key:?}"))?;
        u64::try_from(value)
            .with_context(|| format!("the value under {key:?} is {value}, not an unsigned counter"))
    }

    fn get_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let namespace = Namespace::of(bucket);
        let stored: Vec<String> = keys.iter().map(|key| namespace.key(key)).collect();
        self.run(async |redis| redis::cmd("MGET").arg(&stored).query_async(redis).await)
    }

    fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let namespace = Namespace::of(bucket);
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for (key, value) in entries {
            pipeline.set(namespace.key(key), value).ignore();
        }
        self.run(async |redis| pipeline.exec_async(redis).await)
    }

    fn delete_many(&self, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let namespace = Namespace::of(bucket);
        let stored: Vec<String> = keys.iter().map(|key| namespace.key(key)).collect();
        self.run(async |redis| redis.del(stored).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_text_that_did_not_parse_is_masked() {
        assert_eq!(redacted("redis://:pw@h:x/0"), "redis://:***@h:x/0");
        assert_eq!(redacted("reddis://u:pw@h/0"), "reddis://u:***@h/0");
        assert_eq!(redacted("redis://pw@h"), "redis://***@h");
        assert_eq!(redacted("redis://h:6379/@x"), "redis://h:6379/@x");
        assert_eq!(redacted("redb:./p@q"), "redb:./p@q");
    }

    #[test]
    fn no_bucket_prefix_is_a_prefix_of_another() {
        let a = Namespace::of("a");
        let ab = Namespace::of("ab");
        assert_eq!(a.key("bc"), "kv:1:a:bc");
        assert_eq!(ab.key("c"), "kv:2:ab:c");
        assert_eq!(a.guest_key(ab.key("c").as_bytes()), None);
        assert_eq!(Namespace::of("").key("k"), "kv:0::k");
        // A bucket named like another bucket's prefix plus key.
        assert_ne!(Namespace::of("a:b").key("c"), Namespace::of("a").key("b:c"));
    }

    #[test]
    fn scan_patterns_escape_glob_characters() {
        assert_eq!(Namespace::of("a*[b]?\\").pattern(), r"kv:7:a\*\[b\]\?\\:*");
        assert_eq!(Namespace::of("").pattern(), "kv:0::*");
    }

    #[test]
    fn urls_show_no_password() {
        let shown = |spec: &str| {
            RedisUrl::parse(spec)
                .expect("a Redis URL")
                .expect("valid")
                .to_string()
        };
        assert_eq!(shown("redis://redis:6379"), "redis://redis:6379/0");
        assert_eq!(
            shown("redis://:secret@redis:6379/2"),
            "redis://:***@redis:6379/2"
        );
        assert_eq!(
            shown("rediss://app:secret@cache.example:6380/1"),
            "rediss://app:***@cache.example:6380/1"
        );
        assert!(RedisUrl::parse("memory").is_none());
        assert!(matches!(RedisUrl::parse("redis://"), Some(Err(_))));
    }
}
