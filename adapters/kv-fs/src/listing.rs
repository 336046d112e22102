//! `list-keys` over a directory: the bucket's keys read once per listing, sorted, and handed
//! out a page at a time.
//!
//! Nothing in a directory says where a page ended, and walking a bucket costs about 5 µs a
//! file under wasi, so a listing that walked the bucket again for every page would cost
//! pages × keys: 100 pages of 10,000 tasks, five seconds. A [`Listing`] walks once, when the
//! guest starts it (cursor `None`), and its cursors are positions in that snapshot. It lives
//! in the bucket handle, for as long as the guest holds it (one request, under `wasmtime
//! serve`), and is dropped after its last page; meanwhile it holds every key of the bucket,
//! about 50 bytes each for a task.

/// Keys per `list-keys` page.
pub(crate) const PAGE_SIZE: usize = 100;

/// One listing in progress: see the module docs.
#[derive(Debug)]
pub(crate) struct Listing {
    keys: Vec<String>,
}

/// A page, and the cursor of the next one (`None` after the last).
pub(crate) type Page = (Vec<String>, Option<u64>);

impl Listing {
    /// A listing of `keys`, in their order.
    pub(crate) fn new(keys: Vec<String>) -> Self {
        Self { keys }
    }

    /// The page starting at `cursor`, or `None` if `cursor` is not a position in this
    /// listing. The cursor is guest-controlled: it is checked, never trusted.
    pub(crate) fn page(&self, cursor: u64) -> Option<Page> {
        let start = usize::try_from(cursor)
            .ok()
            .filter(|start| *start <= self.keys.len())?;
        let end = start.saturating_add(PAGE_SIZE).min(self.keys.len());
        let next = (end < self.keys.len()).then_some(end as u64);
        Some((self.keys[start..end].to_vec(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("k{i:05}")).collect()
    }

    #[test]
    fn pages_follow_their_cursors_to_the_end() {
        let all = keys(2 * PAGE_SIZE + 7);
        let listing = Listing::new(all.clone());
        let mut listed = Vec::new();
        let mut cursor = Some(0);
        let mut pages = 0;
        while let Some(at) = cursor {
            assert!(pages < 10, "the cursor does not end");
            let (page, next) = listing.page(at).expect("a cursor this listing handed out");
            listed.extend(page);
            cursor = next;
            pages += 1;
        }
        assert_eq!((listed, pages), (all, 3));
    }

    #[test]
    fn an_empty_bucket_is_one_empty_page() {
        assert_eq!(Listing::new(vec![]).page(0), Some((vec![], None)));
    }

    #[test]
    fn a_cursor_outside_the_listing_is_refused() {
        let listing = Listing::new(keys(5));
        for outside in [6, u64::MAX] {
            assert_eq!(listing.page(outside), None, "{outside}");
        }
    }
}
