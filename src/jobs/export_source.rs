//! Reads the contacts of an export in keyset chunks, only the exported
//! columns, by position: decoding whole models (every column, by name)
//! was most of an export's time.

use chrono::{DateTime, Utc};
use entity::contact;
use futures_util::StreamExt as _;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    ExprTrait as _, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Statement,
    StreamTrait as _,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::domain::contact_list::ContactFilter;
use crate::jobs::export_layout::{ExportRow, TEXT_COLUMNS};

const TEXT: [contact::Column; TEXT_COLUMNS] = [
    contact::Column::Name,
    contact::Column::Email,
    contact::Column::Phone,
    contact::Column::Company,
    contact::Column::CountryCode,
    contact::Column::StateName,
    contact::Column::ProvinceName,
    contact::Column::City,
    contact::Column::PostalCode,
    contact::Column::TimeZone,
];

/// How many rows the reader hands the writer at a time.
const HANDOFF_ROWS: usize = 1_000;

/// The contacts of one project created in [from, to) that match the
/// contacts list's filter, oldest first.
#[derive(Debug, Clone)]
pub struct ExportSource {
    pub project_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub filter: ContactFilter,
    pub with_attributes: bool,
}

/// Where the previous chunk ended.
pub type ChunkEnd = (DateTime<Utc>, Uuid);

/// Rows as the reader hands them over: a batch, or why reading stopped.
pub type Batch = Result<Vec<ExportRow>, DbErr>;

enum ChunkOutcome {
    /// The chunk was full: there may be more after it.
    Full(ChunkEnd),
    /// The range is read to its end, or nobody is listening any more.
    Done,
}

impl ExportSource {
    /// The exported rows: the project's, in the range, matching the filter
    /// as the list reads it.
    pub fn condition(&self, backend: DbBackend) -> Condition {
        Condition::all()
            .add(contact::Column::ProjectId.eq(self.project_id))
            .add(contact::Column::CreatedAt.gte(self.from))
            .add(contact::Column::CreatedAt.lt(self.to))
            .add(self.filter.condition(backend))
    }

    /// Up to `limit` rows after `after`, in export order.
    fn chunk_statement(
        &self,
        backend: DbBackend,
        after: Option<ChunkEnd>,
        limit: u64,
    ) -> Statement {
        let mut query = contact::Entity::find()
            .select_only()
            .column(contact::Column::Id)
            .columns(TEXT)
            .column(contact::Column::CreatedAt)
            .column(contact::Column::LastSeenAt)
            .filter(self.condition(backend))
            .order_by_asc(contact::Column::CreatedAt)
            .order_by_asc(contact::Column::Id)
            .limit(limit);
        if self.with_attributes {
            query = query.column(contact::Column::CustomAttributes);
        }
        if let Some((created_at, id)) = after {
            // A row comparison is one range of the (project, created_at,
            // id) index, so every chunk costs the same however deep.
            query = query.filter(
                Expr::tuple([
                    Expr::col((contact::Entity, contact::Column::CreatedAt)),
                    Expr::col((contact::Entity, contact::Column::Id)),
                ])
                .gt(Expr::tuple([Expr::val(created_at), Expr::val(id)])),
            );
        }
        backend.build(&query.into_query())
    }

    /// Reads one chunk and hands it on in batches.
    ///
    /// On PostgreSQL the rows are streamed: the database keeps producing
    /// while the batches before are decoded and written, which is what
    /// makes a large export as fast as the database can read. SQLite has a
    /// single connection, which the writer needs between batches (for the
    /// progress and the lease), so there a chunk is read whole first.
    async fn send_chunk(
        &self,
        db: &DatabaseConnection,
        after: Option<ChunkEnd>,
        limit: u64,
        batches: &mpsc::Sender<Batch>,
    ) -> Result<ChunkOutcome, DbErr> {
        let backend = db.get_database_backend();
        let limit = if backend == DbBackend::Sqlite {
            Ord::min(limit, HANDOFF_ROWS as u64)
        } else {
            limit
        };
        let statement = self.chunk_statement(backend, after, limit);
        let mut handoff = Handoff::new(batches);
        if backend == DbBackend::Sqlite {
            for row in db.query_all_raw(statement).await? {
                if !handoff.push(decode(&row, self.with_attributes)?).await {
                    return Ok(ChunkOutcome::Done);
                }
            }
        } else {
            let mut rows = db.stream_raw(statement).await?;
            while let Some(row) = rows.next().await {
                if !handoff.push(decode(&row?, self.with_attributes)?).await {
                    return Ok(ChunkOutcome::Done);
                }
            }
        }
        let read = handoff.read;
        match handoff.finish().await {
            Some(end) if read == limit => Ok(ChunkOutcome::Full(end)),
            _ => Ok(ChunkOutcome::Done),
        }
    }
}

/// Gathers the rows of one chunk into batches for the writer, and
/// remembers where the chunk ended.
struct Handoff<'a> {
    batches: &'a mpsc::Sender<Batch>,
    batch: Vec<ExportRow>,
    read: u64,
    last: Option<ChunkEnd>,
}

impl<'a> Handoff<'a> {
    fn new(batches: &'a mpsc::Sender<Batch>) -> Self {
        Handoff {
            batches,
            batch: Vec::with_capacity(HANDOFF_ROWS),
            read: 0,
            last: None,
        }
    }

    /// False once nobody is listening any more.
    async fn push(&mut self, row: ExportRow) -> bool {
        self.read += 1;
        self.last = Some((row.created_at, row.id));
        self.batch.push(row);
        if self.batch.len() < HANDOFF_ROWS {
            return true;
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(HANDOFF_ROWS));
        self.batches.send(Ok(full)).await.is_ok()
    }

    /// Hands over the rest; where the chunk ended, unless it was empty or
    /// nobody is listening.
    async fn finish(self) -> Option<ChunkEnd> {
        if !self.batch.is_empty() && self.batches.send(Ok(self.batch)).await.is_err() {
            return None;
        }
        self.last
    }
}

/// Reads the whole range, a chunk of `chunk_rows` per query, on a task of
/// its own, so that reading and writing overlap; the channel holds one
/// batch, so memory stays flat however many rows there are. Reading stops
/// at the end, at the first error (which is handed on), or when the
/// receiver is dropped.
pub fn read_ahead(
    source: ExportSource,
    db: DatabaseConnection,
    chunk_rows: u64,
) -> mpsc::Receiver<Batch> {
    let (batches, receiver) = mpsc::channel(1);
    // The reader's lines belong to the job too.
    let reading = async move {
        let mut after = None;
        loop {
            match source.send_chunk(&db, after, chunk_rows, &batches).await {
                Ok(ChunkOutcome::Full(end)) => after = Some(end),
                Ok(ChunkOutcome::Done) => return,
                Err(error) => {
                    let _ = batches.send(Err(error)).await;
                    return;
                }
            }
        }
    };
    tokio::spawn(tracing::Instrument::in_current_span(reading));
    receiver
}

fn decode(row: &QueryResult, with_attributes: bool) -> Result<ExportRow, DbErr> {
    let mut text: [Option<String>; TEXT_COLUMNS] = Default::default();
    for (index, cell) in text.iter_mut().enumerate() {
        *cell = row.try_get_by(index + 1)?;
    }
    let after_text = TEXT_COLUMNS + 1;
    Ok(ExportRow {
        id: row.try_get_by(0)?,
        text,
        created_at: row.try_get_by(after_text)?,
        last_seen_at: row.try_get_by(after_text + 1)?,
        attributes: if with_attributes {
            row.try_get_by(after_text + 2)?
        } else {
            None
        },
    })
}
