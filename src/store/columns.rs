//! Reading a row by column name the same way on both backends, so each record's mapping from a
//! row is written once (`mapping.rs`). The backends differ in two column types only: a UUID is
//! native in Postgres and hyphenated text in SQLite, and an integer is 32-bit in Postgres and
//! 64-bit in SQLite.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Postgres, Row, Sqlite, Type};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::StoreError;
use super::errors::from_sqlx;
use super::rows;

/// A column type both backends decode alike (text, times, floats, booleans, and options of them).
pub(crate) trait Decodable:
    for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<T> Decodable for T where
    T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

pub(crate) trait Columns {
    fn get<T: Decodable>(&self, column: &str) -> Result<T, StoreError>;
    fn uuid(&self, column: &str) -> Result<Uuid, StoreError>;
    /// A non-negative count.
    fn count(&self, column: &str) -> Result<u32, StoreError>;
}

impl Columns for PgRow {
    fn get<T: Decodable>(&self, column: &str) -> Result<T, StoreError> {
        self.try_get(column).map_err(from_sqlx)
    }

    fn uuid(&self, column: &str) -> Result<Uuid, StoreError> {
        self.try_get(column).map_err(from_sqlx)
    }

    fn count(&self, column: &str) -> Result<u32, StoreError> {
        rows::count(self.try_get::<i32, _>(column).map_err(from_sqlx)?)
    }
}

impl Columns for SqliteRow {
    fn get<T: Decodable>(&self, column: &str) -> Result<T, StoreError> {
        self.try_get(column).map_err(from_sqlx)
    }

    fn uuid(&self, column: &str) -> Result<Uuid, StoreError> {
        self.try_get::<Hyphenated, _>(column).map(Hyphenated::into_uuid).map_err(from_sqlx)
    }

    fn count(&self, column: &str) -> Result<u32, StoreError> {
        rows::count(self.try_get::<i64, _>(column).map_err(from_sqlx)?)
    }
}
