//! The `list-keys` cursors of one request.
//!
//! The WIT cursor is a `u64` the guest hands back; a backend continues a listing from a
//! cursor of its own (the last key returned, a Redis `SCAN` cursor). [`Cursors`] maps one to
//! the other: each page that has a next one gets a fresh number standing for the backend's
//! cursor and the bucket it lists. The numbers are guest-controlled input when they come
//! back, so one this request was never handed (or handed for another bucket, or evicted) is
//! an error for the guest, never a trap. The map lives as long as the request and holds at
//! most [`MAX_LIVE`] cursors, the most recent: enough for a guest to list several buckets at
//! once, and a bound on what a guest that never finishes its listings can make the host
//! keep.

use std::collections::VecDeque;

/// Cursors a request holds at once; handing out one more forgets the oldest.
pub(crate) const MAX_LIVE: usize = 16;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    live: VecDeque<Live>,
    /// The last number handed out; numbers start at 1 and never repeat within a request.
    last: u64,
}

/// A cursor handed to the guest.
#[derive(Debug)]
struct Live {
    number: u64,
    bucket: String,
    backend: String,
}

impl Cursors {
    /// A new guest cursor for continuing `bucket`'s listing from the backend's cursor.
    pub(crate) fn issue(&mut self, bucket: &str, backend: String) -> u64 {
        if self.live.len() == MAX_LIVE {
            self.live.pop_front();
        }
        self.last += 1;
        self.live.push_back(Live {
            number: self.last,
            bucket: bucket.to_owned(),
            backend,
        });
        self.last
    }

    /// The backend's cursor behind guest cursor `number` for `bucket`, if this request was
    /// handed it for that bucket and it is still live. It stays live after use, so a guest
    /// may ask for the same page again.
    pub(crate) fn resolve(&self, bucket: &str, number: u64) -> Option<&str> {
        self.live
            .iter()
            .find(|live| live.number == number && live.bucket == bucket)
            .map(|live| live.backend.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_resolves_to_what_it_was_issued_for_and_only_in_its_bucket() {
        let mut cursors = Cursors::default();
        let first = cursors.issue("", "task/0001".to_owned());
        let other = cursors.issue("other", "k".to_owned());
        assert_ne!(first, other);
        assert_eq!(cursors.resolve("", first), Some("task/0001"));
        assert_eq!(cursors.resolve("", first), Some("task/0001"), "reusable");
        assert_eq!(cursors.resolve("other", other), Some("k"));
        assert_eq!(cursors.resolve("other", first), None, "another bucket's");
    }

    #[test]
    fn numbers_never_handed_out_are_unknown() {
        let mut cursors = Cursors::default();
        assert_eq!(cursors.resolve("", 0), None);
        let issued = cursors.issue("", "k".to_owned());
        for forged in [0, issued + 1, u64::MAX] {
            assert_eq!(cursors.resolve("", forged), None, "{forged}");
        }
    }

    #[test]
    fn only_the_most_recent_cursors_are_kept() {
        let mut cursors = Cursors::default();
        let numbers: Vec<u64> = (0..MAX_LIVE + 3)
            .map(|i| cursors.issue("", format!("k{i}")))
            .collect();
        assert_eq!(cursors.live.len(), MAX_LIVE);
        for (i, number) in numbers.iter().enumerate() {
            let expected = (i >= 3).then(|| format!("k{i}"));
            assert_eq!(
                cursors.resolve("", *number),
                expected.as_deref(),
                "cursor {i}"
            );
        }
    }
}
