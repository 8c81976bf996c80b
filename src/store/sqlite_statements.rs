//! Statement text for the SQLite store's many-rows-to-a-statement writes (vehicles, sessions,
//! key use).

use std::borrow::Cow;
use std::sync::OnceLock;

/// `(?, ?, ...)` with `columns` placeholders, `rows` times, comma-separated: the VALUES list of
/// the many-rows-to-a-statement writes (vehicles, sessions, key use).
pub(super) fn placeholder_rows(columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row.as_str(); rows].join(",")
}

/// The text of a many-rows statement, built by `build` for a number of rows. Kept once built for
/// a full chunk (`rows`), the length of nearly every statement of a large write; built each time
/// for other lengths. A 100-row vehicle upsert is ~3 KiB of text: allocated, written and freed
/// for every statement, it was ~2% of the server's CPU while the write-behind caught up after a
/// webhook load, and its allocation the most frequent caller of the allocator's slow path.
pub(super) struct ChunkStatement {
    rows: usize,
    build: fn(usize) -> String,
    full: OnceLock<String>,
}

impl ChunkStatement {
    pub(super) const fn new(rows: usize, build: fn(usize) -> String) -> Self {
        Self { rows, build, full: OnceLock::new() }
    }

    /// The statement for `rows` rows. Built from constants only (placeholders, no data): nothing
    /// to inject.
    pub(super) fn text(&'static self, rows: usize) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sqlx::AssertSqlSafe(if rows == self.rows {
            Cow::Borrowed(self.full.get_or_init(|| (self.build)(rows)).as_str())
        } else {
            Cow::Owned((self.build)(rows))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_chunk_statement_is_built_once() {
        static STATEMENT: ChunkStatement =
            ChunkStatement::new(3, |rows| format!("VALUES {}", placeholder_rows(1, rows)));
        let first = STATEMENT.text(3).0;
        let again = STATEMENT.text(3).0;
        assert!(matches!(again, Cow::Borrowed(_)));
        assert!(std::ptr::eq(first.as_ref(), again.as_ref()), "the same text, not a copy");
        assert_eq!(again, "VALUES (?),(?),(?)");
        assert_eq!(STATEMENT.text(2).0, "VALUES (?),(?)");
    }
}
