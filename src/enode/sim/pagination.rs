//! Keyset pagination, newest first, as Enode's list calls do it. A cursor names the creation
//! number of the item it sits at, so pages stay exact (no duplicate, nothing skipped) while
//! vehicles are added or removed between calls.

use std::ops::Bound;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::problem::SimError;
use crate::enode::model::Pagination;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1000;

/// The query of a list call.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub page_size: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// First page, or older than the cursor.
    Older(Option<u64>),
    /// Newer than the cursor.
    Newer(u64),
}

#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    size: usize,
    direction: Direction,
}

impl PageRequest {
    pub fn parse(query: &PageQuery) -> Result<Self, SimError> {
        let size = match query.page_size.as_deref() {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(raw) => raw.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE_SIZE).contains(n)).ok_or_else(|| {
                SimError::bad_request(format!("pageSize must be an integer from 1 to {MAX_PAGE_SIZE}"))
            })?,
        };
        let direction = match (query.after.as_deref(), query.before.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(SimError::bad_request("after and before cannot be used together"));
            }
            (Some(after), None) => Direction::Older(Some(decode(after)?)),
            (None, Some(before)) => Direction::Newer(decode(before)?),
            (None, None) => Direction::Older(None),
        };
        Ok(Self { size, direction })
    }
}

pub fn encode(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode(cursor: &str) -> Result<u64, SimError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("seq:")?.parse().ok())
        .ok_or_else(|| SimError::bad_request("invalid pagination cursor"))
}

/// Picks one page of keys, newest (largest) first. `keys(range)` must list the keys in that range
/// in ascending order.
pub fn select<I>(request: PageRequest, keys: impl Fn((Bound<u64>, Bound<u64>)) -> I) -> (Vec<u64>, Pagination)
where
    I: DoubleEndedIterator<Item = u64>,
{
    let n = request.size;
    let mut page: Vec<u64>;
    let more;
    match request.direction {
        Direction::Older(cursor) => {
            let upper = cursor.map_or(Bound::Unbounded, Bound::Excluded);
            page = keys((Bound::Unbounded, upper)).rev().take(n + 1).collect();
            more = page.len() > n;
            page.truncate(n);
        }
        Direction::Newer(cursor) => {
            page = keys((Bound::Excluded(cursor), Bound::Unbounded)).take(n + 1).collect();
            more = page.len() > n;
            page.truncate(n);
            page.reverse();
        }
    }
    let (Some(&newest), Some(&oldest)) = (page.first(), page.last()) else {
        return (page, Pagination::default());
    };
    let newer_exist = match request.direction {
        Direction::Newer(_) => more,
        Direction::Older(_) => keys((Bound::Excluded(newest), Bound::Unbounded)).next().is_some(),
    };
    let older_exist = match request.direction {
        Direction::Older(_) => more,
        Direction::Newer(_) => keys((Bound::Unbounded, Bound::Excluded(oldest))).next().is_some(),
    };
    let pagination =
        Pagination { before: newer_exist.then(|| encode(newest)), after: older_exist.then(|| encode(oldest)) };
    (page, pagination)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn query(size: usize, after: Option<String>, before: Option<String>) -> PageRequest {
        PageRequest::parse(&PageQuery { page_size: Some(size.to_string()), after, before }).unwrap()
    }

    #[test]
    fn walks_forward_and_back_exactly() {
        let set: BTreeSet<u64> = (1..=7).collect();
        let keys = |r| set.range(r).copied();
        let (p1, c1) = select(query(3, None, None), keys);
        assert_eq!(p1, vec![7, 6, 5]);
        assert_eq!(c1.before, None);
        let (p2, c2) = select(query(3, c1.after.clone(), None), keys);
        assert_eq!(p2, vec![4, 3, 2]);
        let (p3, c3) = select(query(3, c2.after.clone(), None), keys);
        assert_eq!(p3, vec![1]);
        assert_eq!(c3.after, None);
        let (back, c4) = select(query(3, None, c3.before.clone()), keys);
        assert_eq!(back, vec![4, 3, 2]);
        let (first, c5) = select(query(3, None, c4.before.clone()), keys);
        assert_eq!(first, vec![7, 6, 5]);
        assert_eq!(c5.before, None);
    }

    #[test]
    fn after_and_before_together_is_refused() {
        let both = PageQuery { page_size: None, after: Some(encode(1)), before: Some(encode(2)) };
        assert_eq!(PageRequest::parse(&both).unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
    }
}
