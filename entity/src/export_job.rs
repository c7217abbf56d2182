//! A contact export: a durable background job and its outcome.

use sea_orm::entity::prelude::*;

/// Where an export is in its life. Stored as the upper-case name, as the
/// rows written before this type existed hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ExportStatus {
    /// Waiting for a worker (first attempt, or a retry after a failure).
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// The file is stored and the agent notified; the mail may still be due.
    #[sea_orm(string_value = "COMPLETED")]
    Completed,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl ExportStatus {
    /// Whether the job has reached a state it never leaves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExportStatus::Completed | ExportStatus::Failed | ExportStatus::Cancelled
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "export_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    /// The agent who asked, and the only one the link is sent to.
    pub requested_by: Uuid,
    /// Contacts created in [range_from, range_to) are exported.
    pub range_from: DateTimeUtc,
    pub range_to: DateTimeUtc,
    pub status: ExportStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimed before this time (backoff between attempts).
    pub run_after: DateTimeUtc,
    /// The worker holding the job while it runs, until the lease expires.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub rows_written: i64,
    pub rows_total: Option<i64>,
    /// Where the finished file is stored.
    pub object_key: Option<String>,
    pub file_bytes: Option<i64>,
    /// Why the job failed, in words an agent can read.
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub delivered_at: Option<DateTimeUtc>,
    pub mail_sent_at: Option<DateTimeUtc>,
    pub mail_attempts: i32,
    pub mail_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// CSV or XLSX.
    pub format: String,
    /// The contacts list filter the rows also match; null for none.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub filter: Option<Json>,
    /// The chosen columns in file order; null for every contact field and
    /// every custom attribute found.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub columns: Option<Json>,
    /// The IANA zone times are written in; null for UTC.
    pub time_zone: Option<String>,
    /// The S3 multipart upload the running attempt started and has not
    /// finished: a worker taking the job over aborts it.
    pub upload_id: Option<String>,
    /// When retention deleted the finished file; its links answer 410 Gone.
    pub file_expired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
