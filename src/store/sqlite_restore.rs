//! Loading every vehicle from SQLite at start, a page of rows per result.
//!
//! sqlx's SQLite driver runs SQLite on a thread of its own and hands each result row to the task
//! as a message of its own. For 100 000 vehicles that was 100 000 messages, each a wake-up and a
//! thread switch on a busy core, plus a row's worth of copies and allocations: measured, about a
//! quarter of the start-up's CPU was kernel time, most of it switching threads. So SQLite joins
//! each page of rows into one text, a row per line, and the page is split here: a thousand times
//! fewer messages. The columns are joined with ASCII's unit separator and the rows with its
//! record separator, neither of which can appear in a row: ids, source and time are plain text
//! the service wrote, and `data` must pass `json_valid`, which refuses raw control characters
//! inside strings and anywhere else. A page whose parts do not add up is refused as corrupt
//! rather than guessed at.

use evconduit_actors::state::VehicleState;
use futures::Stream;
use sqlx::SqliteConnection;

use super::StoreError;
use super::errors::from_sqlx;
use super::load::{self, VehicleColumns};
use super::rows;

const UNIT: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// Rows with a rowid at or above ?1, in rowid order (a walk of the table's own B-tree), at most
/// ?2 of them: how many, the last rowid, and the rows joined (NULL when there are none).
const PAGE: &str = "SELECT count(*), max(r), group_concat(line, char(30)) FROM (\
        SELECT rowid AS r, id || char(31) || user_id || char(31) || source || char(31) || received_at \
            || char(31) || relink_required || char(31) || data AS line \
        FROM vehicles WHERE rowid >= ?1 ORDER BY rowid LIMIT ?2)";

/// One page as SQLite joined it.
struct Page {
    rows: usize,
    text: String,
}

/// Every vehicle, page by page, parsed in parallel (see load.rs). `db` should be inside a
/// transaction, so the pages are of one snapshot of the table.
pub(crate) async fn load_vehicles(db: &mut SqliteConnection) -> Result<Vec<VehicleState>, StoreError> {
    load::decode_chunks(pages(db), decode_page).await
}

fn pages(db: &mut SqliteConnection) -> impl Stream<Item = Result<Page, StoreError>> + '_ {
    let rows_per_page = i64::try_from(load::CHUNK).unwrap_or(i64::MAX);
    futures::stream::try_unfold((db, Some(i64::MIN)), move |(db, from)| async move {
        let Some(from) = from else { return Ok(None) };
        let (rows, last, text): (i64, Option<i64>, Option<String>) =
            sqlx::query_as(PAGE).bind(from).bind(rows_per_page).fetch_one(&mut *db).await.map_err(from_sqlx)?;
        let (Some(last), Some(text)) = (last, text) else { return Ok(None) };
        let rows = usize::try_from(rows).map_err(|_| StoreError::Corrupt(format!("a page of {rows} vehicles")))?;
        // A short page is the last one; so is a page ending at the largest rowid there can be.
        let next = if rows < load::CHUNK { None } else { last.checked_add(1) };
        Ok(Some((Page { rows, text }, (db, next))))
    })
}

fn decode_page(page: Page) -> Result<Vec<VehicleState>, StoreError> {
    let lines: Vec<&str> = page.text.split(RECORD).collect();
    if lines.len() != page.rows {
        return Err(StoreError::Corrupt(format!(
            "a page of {} vehicles split into {} rows: a column holds a separator",
            page.rows,
            lines.len()
        )));
    }
    lines.into_iter().map(|line| columns(line)?.decode()).collect()
}

/// One line of a page: id, user id, source, received at, relink required, data.
fn columns(line: &str) -> Result<VehicleColumns<'_>, StoreError> {
    let mut parts = line.splitn(6, UNIT);
    let mut next =
        || parts.next().ok_or_else(|| StoreError::Corrupt(format!("a vehicle row of too few columns: {line:.60}")));
    let internal_id = rows::uuid_text(next()?)?;
    let named = rows::in_vehicle(internal_id);
    let user_id = rows::uuid_text(next()?).map_err(&named)?;
    let source = next().map_err(&named)?;
    let received_at = rows::time_text(next().map_err(&named)?).map_err(&named)?;
    let relink_required = match next().map_err(&named)? {
        "0" => false,
        "1" => true,
        other => return Err(named(StoreError::Corrupt(format!("relink_required is {other:?}")))),
    };
    let data = next().map_err(&named)?;
    Ok(VehicleColumns { internal_id, user_id, data, source, received_at, relink_required })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(received_at: &str, relink: &str, data: &str) -> String {
        let id = "7f1c1d2e-0000-4000-8000-000000000001";
        let user = "7f1c1d2e-0000-4000-8000-000000000002";
        [id, user, "webhook", received_at, relink, data].join(&UNIT.to_string())
    }

    #[test]
    fn a_line_splits_into_its_columns_and_data_keeps_everything_after_them() {
        let text = line("2026-03-01T12:34:56.789012+00:00", "1", r#"{"id":"v","note":"a;b"}"#);
        let row = columns(&text).expect("a row");
        assert_eq!(row.source, "webhook");
        assert!(row.relink_required);
        assert_eq!(row.received_at.to_rfc3339(), "2026-03-01T12:34:56.789012+00:00");
        assert_eq!(row.data, r#"{"id":"v","note":"a;b"}"#);
    }

    #[test]
    fn bad_columns_are_corrupt_and_name_the_vehicle() {
        for bad in [line("yesterday", "0", "{}"), line("2026-03-01T12:34:56Z", "2", "{}")] {
            match columns(&bad) {
                Err(StoreError::Corrupt(what)) => {
                    assert!(what.contains("7f1c1d2e-0000-4000-8000-000000000001"), "{what}")
                }
                other => panic!("expected Corrupt, got {:?}", other.map(|r| r.internal_id)),
            }
        }
        assert!(matches!(columns("not-a-uuid"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_page_that_splits_into_more_rows_than_it_holds_is_corrupt() {
        let vehicle = r#"{"id":"v","vendor":"TESLA"}"#;
        let text = line("2026-03-01T12:34:56Z", "0", vehicle);
        let page = Page { rows: 1, text: format!("{text}{RECORD}{text}") };
        match decode_page(page) {
            Err(StoreError::Corrupt(what)) => assert!(what.contains("split into 2 rows"), "{what}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
