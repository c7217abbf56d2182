//! Contact exports: asking for one, following it, listing and cancelling.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use entity::export_job;
use futures_util::{Stream, StreamExt, stream};

use crate::domain::access::Role;
use crate::domain::contact_list::{ContactFilter, FilterInput};
use crate::domain::dates;
use crate::domain::events::Event;
use crate::domain::export_choices::{ColumnChoice, ExportFormat};
use crate::domain::exports::{self, DateRange, ExportChoices};
use crate::domain::ids::parse_id;
use crate::error::AppError;
use crate::graphql::auth::Agent;
use crate::graphql::contacts::ContactFilterInput;
use crate::graphql::context::{project_access, require_agent, services};
use crate::graphql::export_choices::{
    ExportColumnInput, ExportFilter, ExportFormatView, ExportedColumn,
};
use crate::graphql::loaders::Loaders;

const MAX_PAGE: u64 = 100;

/// Where an export is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is writing the file.
    Running,
    /// The file is ready: `downloadUrl` links to it.
    Completed,
    /// It failed for good: `error` says why.
    Failed,
    /// An agent cancelled it; nothing was delivered.
    Cancelled,
}

impl From<exports::ExportStatus> for ExportStatus {
    fn from(status: exports::ExportStatus) -> Self {
        match status {
            exports::ExportStatus::Queued => ExportStatus::Queued,
            exports::ExportStatus::Running => ExportStatus::Running,
            exports::ExportStatus::Completed => ExportStatus::Completed,
            exports::ExportStatus::Failed => ExportStatus::Failed,
            exports::ExportStatus::Cancelled => ExportStatus::Cancelled,
        }
    }
}

pub struct ExportJob(pub export_job::Model);

/// An export of a project's contacts to a file, as the members of the project
/// see it.
#[Object]
impl ExportJob {
    /// The export's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The project whose contacts it exports.
    async fn project_id(&self) -> ID {
        ID(self.0.project_id.to_string())
    }

    /// Who asked; the emailed link goes to this agent only.
    async fn requested_by(&self, ctx: &Context<'_>) -> Result<Option<Agent>> {
        let agent = ctx
            .data::<Loaders>()?
            .agents
            .load_one(self.0.requested_by)
            .await?;
        Ok(agent.as_ref().map(Agent::from))
    }

    /// Contacts created at or after this instant are exported…
    async fn from(&self) -> DateTime<Utc> {
        self.0.range_from
    }

    /// …and before this one.
    async fn to(&self) -> DateTime<Utc> {
        self.0.range_to
    }

    /// Where the export is.
    async fn status(&self) -> ExportStatus {
        self.0.status.into()
    }

    /// The kind of file.
    async fn format(&self) -> ExportFormatView {
        ExportFormat::from_stored(&self.0.format).into()
    }

    /// The contacts list filter the rows also match; null for none.
    async fn filter(&self) -> Option<ExportFilter> {
        let stored = self.0.filter.clone()?;
        serde_json::from_value::<FilterInput>(stored)
            .ok()
            .map(ExportFilter::from)
    }

    /// The columns in file order; null for the default: every contact field,
    /// then every custom attribute the exported contacts carry.
    async fn columns(&self) -> Option<Vec<ExportedColumn>> {
        let choice = ColumnChoice::from_stored(self.0.columns.as_ref());
        Some(choice.chosen()?.iter().map(ExportedColumn::from).collect())
    }

    /// The IANA zone the file's times are written in.
    async fn time_zone(&self) -> &str {
        self.0.time_zone.as_deref().unwrap_or("UTC")
    }

    /// Rows written so far.
    async fn rows_written(&self) -> i64 {
        self.0.rows_written
    }

    /// The number of rows to write, known once the export runs.
    async fn rows_total(&self) -> Option<i64> {
        self.0.rows_total
    }

    /// Share of rows written, from 0 to 1, once the total is known.
    async fn progress(&self) -> Option<f64> {
        let total = self.0.rows_total?;
        Some(if total == 0 {
            1.0
        } else {
            self.0.rows_written as f64 / total as f64
        })
    }

    /// How many times a worker started it; transient failures are retried.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// The number of the attempt these figures belong to, from 1 (0 while
    /// the job waits for its first). `rowsWritten` and `progress` never go
    /// down within an attempt; a retry starts again from zero under the
    /// next number.
    async fn attempt(&self) -> i32 {
        self.0.attempts
    }

    /// Why the export failed (or why its last attempt failed, while retried).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When a worker first started it.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    /// When it completed, failed or was cancelled.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// When the link was mailed to the agent who asked.
    async fn mail_sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.mail_sent_at
    }

    /// When retention deleted the file (`EXPORT_FILE_RETENTION_DAYS` after
    /// the export finished); from then on there is no `downloadUrl` and
    /// the links sent earlier answer 410 Gone. Ask for a new export instead.
    async fn file_expired_at(&self) -> Option<DateTime<Utc>> {
        self.0.file_expired_at
    }

    /// A fresh, short-lived link to the file, while it exists.
    async fn download_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if self.0.file_expired_at.is_some() {
            return Ok(None);
        }
        // A completed job's row holds the key of the file it uploaded, so the
        // link is signed without asking the store, which a list would do
        // once per row.
        let (Some(key), exports::ExportStatus::Completed) = (&self.0.object_key, self.0.status)
        else {
            return Ok(None);
        };
        let services = services(ctx);
        let link = services
            .store
            .download_url(key, services.settings.exports.download_link_ttl)
            .await
            .map_err(AppError::internal)?;
        Ok(Some(link.url))
    }
}

fn parse_cursor(after: Option<String>) -> Result<Option<uuid::Uuid>> {
    Ok(after.map(|cursor| parse_id(&cursor, "after")).transpose()?)
}

fn page_size(first: Option<i32>) -> Result<u64> {
    let first = first.unwrap_or(20);
    if first < 1 || first as u64 > MAX_PAGE {
        return Err(
            AppError::bad_input("first", format!("must be between 1 and {MAX_PAGE}")).into(),
        );
    }
    Ok(first as u64)
}

/// A page of ExportJobs, newest first (a Relay connection).
pub type ExportJobConnection = Connection<String, ExportJob, EmptyFields, EmptyFields>;

#[derive(Default)]
pub struct ExportQuery;

#[Object]
impl ExportQuery {
    /// One export of a project the caller is a member of.
    async fn export_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The export's id.")] id: ID,
    ) -> Result<ExportJob> {
        let agent = require_agent(ctx)?;
        let (job, _) =
            exports::find_for_agent(&services(ctx).db, agent.id, parse_id(&id, "id")?).await?;
        Ok(ExportJob(job))
    }

    /// The project's exports, newest first.
    async fn exports(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be a member.")] project_id: ID,
        #[graphql(desc = "How many exports, from 1 to 100; 20 without it.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<ExportJobConnection> {
        let access = project_access(ctx, &project_id, Role::Agent).await?;
        let (jobs, has_next) = exports::list(
            &services(ctx).db,
            &access,
            page_size(first)?,
            parse_cursor(after)?,
        )
        .await?;
        let mut connection = Connection::new(false, has_next);
        connection.edges.extend(
            jobs.into_iter()
                .map(|job| Edge::new(job.id.to_string(), ExportJob(job))),
        );
        Ok(connection)
    }
}

#[derive(Default)]
pub struct ExportMutation;

#[Object]
impl ExportMutation {
    /// Exports the contacts created in [from, to) that match `filter` (the
    /// `contacts` list's filter, same meaning), oldest first, in the
    /// background. `from` and `to` are RFC 3339 instants, or dates
    /// (YYYY-MM-DD) in `timeZone` (IANA, default UTC), a date `to`
    /// including that day; the file's times are written in `timeZone` too.
    /// `columns` picks the columns in file order (default: every field, then
    /// every custom attribute found). The link arrives by email, in
    /// `notifications`, and on `exportUpdated`.
    #[allow(clippy::too_many_arguments)]
    async fn export_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project; the caller must be a member.")] project_id: ID,
        #[graphql(
            desc = "Start: an RFC 3339 instant, or a date (YYYY-MM-DD) from its first moment in `timeZone`."
        )]
        from: String,
        #[graphql(
            desc = "End, excluded: an RFC 3339 instant, or a date (YYYY-MM-DD) that is included whole."
        )]
        to: String,
        #[graphql(
            desc = "The IANA zone dates are read and the file's times written in; UTC without it."
        )]
        time_zone: Option<String>,
        #[graphql(desc = "CSV or XLSX.", default_with = "Some(ExportFormatView::Csv)")]
        format: Option<ExportFormatView>,
        #[graphql(desc = "The contacts list's filter; only matching contacts are exported.")]
        filter: Option<ContactFilterInput>,
        #[graphql(
            desc = "The columns in file order; every field, then every custom attribute found, without it."
        )]
        columns: Option<Vec<ExportColumnInput>>,
    ) -> Result<ExportJob> {
        let access = project_access(ctx, &project_id, Role::Agent).await?;
        let range = DateRange::parse(&from, &to, time_zone.as_deref())?;
        let choices = ExportChoices {
            format: format.unwrap_or_default().into(),
            filter: match filter {
                Some(filter) => ContactFilter::parse(filter.into_filter()?)?,
                None => ContactFilter::default(),
            },
            columns: ColumnChoice::parse(
                columns.map(|columns| columns.into_iter().map(Into::into).collect()),
            )?,
            time_zone: dates::parse_zone(time_zone.as_deref(), "timeZone")?,
        };
        let services = services(ctx);
        let job = exports::request_export(
            &services.db,
            &access,
            range,
            &choices,
            services.settings.exports.max_attempts,
        )
        .await?;
        services
            .bus
            .publish(Event::ExportUpdated(crate::domain::events::ExportUpdated {
                project_id: job.project_id,
                job_id: job.id,
            }));
        Ok(ExportJob(job))
    }

    /// Cancels a queued or running export: nothing is delivered (a file
    /// already uploaded is removed), and the answer's status is CANCELLED.
    /// Only the agent who asked or a project admin may cancel; a completed
    /// export can no longer be cancelled (BAD_USER_INPUT).
    async fn cancel_export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The export to cancel.")] id: ID,
    ) -> Result<ExportJob> {
        let agent = require_agent(ctx)?;
        let services = services(ctx);
        let (job, access) =
            exports::find_for_agent(&services.db, agent.id, parse_id(&id, "id")?).await?;
        let job = exports::cancel(&services.db, &access, job).await?;
        services
            .bus
            .publish(Event::ExportUpdated(crate::domain::events::ExportUpdated {
                project_id: job.project_id,
                job_id: job.id,
            }));
        Ok(ExportJob(job))
    }
}

#[derive(Default)]
pub struct ExportSubscription;

#[Subscription]
impl ExportSubscription {
    /// The export's state now, then at every change (progress at most a few
    /// times a second) until it is completed, failed or cancelled.
    async fn export_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The export to follow.")] job_id: ID,
    ) -> Result<impl Stream<Item = ExportJob> + use<>> {
        let agent = require_agent(ctx)?;
        let services = services(ctx);
        let job_id = parse_id(&job_id, "jobId")?;
        // Listening before the state is read: a change made in between
        // (the job finishing, say) is then heard rather than lost.
        let events = services.bus.subscribe();
        let (job, _) = exports::find_for_agent(&services.db, agent.id, job_id).await?;
        let agent_id = agent.id;
        let db = services.db.clone();
        let changes = events
            .filter(move |event| {
                std::future::ready(match event {
                    Event::ExportUpdated(update) => update.job_id == job_id,
                    // Some events did not arrive: the row tells the state.
                    Event::EventsMissed => true,
                    _ => false,
                })
            })
            .then(move |_| {
                let db = db.clone();
                async move {
                    exports::find_for_agent(&db, agent_id, job_id)
                        .await
                        .ok()
                        .map(|(job, _)| job)
                }
            })
            .take_while(|job| std::future::ready(job.is_some()))
            .filter_map(std::future::ready);
        let states = stream::iter([job]).chain(changes).boxed();
        // Ends right after the first final state, which is still sent,
        // without waiting for an event that may never come.
        Ok(stream::unfold(Some(states), |states| async move {
            let mut states = states?;
            let job = states.next().await?;
            let more = (!job.status.is_final()).then_some(states);
            Some((ExportJob(job), more))
        }))
    }
}
