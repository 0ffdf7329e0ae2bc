//! `{"items": [...], "next_cursor": ...}` lists with `?limit=` and an opaque `?cursor=`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The query parameters of every list.
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// Parsed here rather than by serde, so a bad value is reported against `limit`.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A validated page request whose cursor is a position `(instant, id)` in the list's order.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl Page {
    pub fn parse(params: &PageParams) -> Result<Self, ApiError> {
        let limit = match params.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(raw) => raw.trim().parse().unwrap_or(0),
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("must be a whole number between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Paginated<T> {
    /// Builds a page from up to `page.fetch_limit()` rows; `position` gives a row's place in
    /// the list's order.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        page: &Page,
        position: impl Fn(&R) -> (DateTime<Utc>, Uuid),
        view: impl FnMut(R) -> T,
    ) -> Self {
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|row| encode_cursor(position(row)))
        } else {
            None
        };
        Self {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

/// The opaque cursor of a position in a list.
pub fn encode_cursor((at, id): (DateTime<Utc>, Uuid)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.to_rfc3339()))
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "is not a cursor this list returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (at, id) = text.split_once('|').ok_or_else(invalid)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| invalid())?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((at.with_timezone(&Utc), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let position = (Utc::now(), Uuid::now_v7());
        assert_eq!(decode_cursor(&encode_cursor(position)).ok(), Some(position));
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("no separator")).is_err());
    }

    #[test]
    fn limits_outside_1_to_200_are_refused() {
        let params = |limit: &str| PageParams {
            limit: Some(limit.to_owned()),
            cursor: None,
        };
        assert!(Page::parse(&params("0")).is_err());
        assert!(Page::parse(&params("201")).is_err());
        assert!(Page::parse(&params("ten")).is_err());
        assert_eq!(Page::parse(&params("200")).map(|p| p.limit).ok(), Some(200));
        assert_eq!(
            Page::parse(&PageParams::default()).map(|p| p.limit).ok(),
            Some(50)
        );
    }

    #[test]
    fn a_full_page_carries_the_cursor_of_its_last_item() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let t = Utc::now();
        let rows: Vec<(DateTime<Utc>, Uuid)> = (0..3).map(|_| (t, Uuid::now_v7())).collect();
        let listed = Paginated::from_rows(rows.clone(), &page, |r| *r, |r| r.1);
        assert_eq!(listed.items, vec![rows[0].1, rows[1].1]);
        assert_eq!(
            listed
                .next_cursor
                .as_deref()
                .map(decode_cursor)
                .and_then(Result::ok),
            Some(rows[1])
        );
        let last = Paginated::from_rows(rows[..2].to_vec(), &page, |r| *r, |r| r.1);
        assert!(last.next_cursor.is_none());
    }
}
