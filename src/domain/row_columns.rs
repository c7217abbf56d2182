//! A row's columns read by position, in order.
//!
//! On PostgreSQL the values are decoded by sqlx straight from the row:
//! through sea-orm each value is also checked against the column's type
//! and each empty one becomes an error with a formatted message before it
//! becomes `None`, which made decoding a contacts page the largest part of
//! its CPU time. The first row of a result has its columns' types checked
//! by sqlx (a mismatch is an error, never a misread); the rows after it
//! share those columns (one row description per result) and are decoded
//! without checking again. SQLite rows go through sea-orm, which knows how
//! it stores dates and ids there.

use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{self, Postgres, Row as _};
use sea_orm::{DbErr, QueryResult, TryGetable};

pub struct RowColumns<'a> {
    row: Row<'a>,
    next: usize,
    types_checked: bool,
}

enum Row<'a> {
    Postgres(&'a PgRow),
    Other(&'a QueryResult),
}

/// What a column can be read as on both engines.
pub trait ColumnValue:
    TryGetable + for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>
{
}

impl<T> ColumnValue for T where
    T: TryGetable + for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>
{
}

impl<'a> RowColumns<'a> {
    /// The columns of the first row of a result, `at` 0, or of a later
    /// row of the same result.
    pub fn of(row: &'a QueryResult, at: usize) -> RowColumns<'a> {
        let row = match row.try_as_pg_row() {
            Some(row) => Row::Postgres(row),
            None => Row::Other(row),
        };
        RowColumns {
            row,
            next: 0,
            types_checked: at > 0,
        }
    }

    /// The next column's value.
    pub fn read<T: ColumnValue>(&mut self) -> Result<T, DbErr> {
        let index = self.next;
        self.next += 1;
        match self.row {
            Row::Postgres(row) => if self.types_checked {
                row.try_get_unchecked(index)
            } else {
                row.try_get(index)
            }
            .map_err(|error| DbErr::Type(format!("column {index}: {error}"))),
            Row::Other(row) => row.try_get_by_index(index),
        }
    }
}
