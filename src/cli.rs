//! The `contacts` command line: the server and the operator's commands.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use std::path::Path;

use crate::bootstrap::OwnerLogin;
use crate::config::Settings;
use crate::domain::access::Role;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{parse_id, random_secret};
use crate::domain::{agents, projects};
use crate::error::AppError;
use crate::startup::{App, shutdown_signal};
use crate::{db, file_modes, graphql, telemetry};

#[derive(Parser)]
#[command(
    name = "contacts",
    version,
    about = "Contacts service of a live-chat support product"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Create an agent account.
    CreateAgent {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Generated and printed when not given.
        #[arg(long, env = "CONTACTS_AGENT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Create a project; the owner becomes its ADMIN.
    CreateProject {
        #[arg(long)]
        name: String,
        /// Email of an existing agent.
        #[arg(long)]
        owner: String,
    },
    /// Add an existing agent to a project.
    AddMember {
        /// Project id.
        #[arg(long)]
        project: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value = "agent")]
        role: RoleArg,
    },
    /// Print the GraphQL schema (SDL) that the server serves.
    PrintSchema,
    /// Export a project's contacts right here, as the server's workers would
    /// (same file, store and mail), and print the link.
    Export {
        /// Project id.
        #[arg(long)]
        project: String,
        /// Email of the member the export is for (it gets the mail).
        #[arg(long)]
        agent: String,
        /// RFC 3339 instant or YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// RFC 3339 instant or YYYY-MM-DD (that whole day included).
        #[arg(long)]
        to: String,
        /// IANA time zone of calendar dates and of the file's times
        /// (default UTC).
        #[arg(long)]
        time_zone: Option<String>,
        /// The file's format.
        #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
        format: FormatArg,
    },
    /// Fill a project with made-up contacts (names, emails, phones, places,
    /// dates), for benchmarks and demos.
    Seed {
        /// Project id.
        #[arg(long)]
        project: String,
        /// How many contacts to add.
        #[arg(long, default_value_t = 1_000)]
        contacts: u64,
        /// The same seed makes the same contacts.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Xlsx,
}

impl From<FormatArg> for crate::domain::export_choices::ExportFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Csv => Self::Csv,
            FormatArg::Xlsx => Self::Xlsx,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Agent,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Agent => Role::Agent,
        }
    }
}

/// Operator commands print what went wrong in plain words.
fn operator_error(error: AppError) -> anyhow::Error {
    match error {
        AppError::Internal(cause) => cause,
        other => anyhow::anyhow!(other.public_message()),
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let command = self.command.unwrap_or(Command::Serve);
        if let Command::PrintSchema = command {
            print!("{}", graphql::sdl());
            return Ok(());
        }
        let settings = Settings::from_env()?;
        telemetry::init(settings.log_format);
        // The key that signs download links, the database and the exports
        // are nobody else's business on this machine.
        file_modes::create_owner_only();
        file_modes::tighten(&settings.data_dir);
        if let Command::Serve = command {
            let served = serve(settings).await;
            telemetry::shutdown();
            return served;
        }
        let db = db::connect(&settings.database_url).await?;
        db::migrate(&db).await?;
        match command {
            Command::Serve | Command::PrintSchema | Command::Migrate => {}
            Command::CreateAgent {
                email,
                name,
                password,
            } => {
                let generated = password.is_none();
                let password = password
                    .unwrap_or_else(|| random_secret("pw").chars().skip(3).take(20).collect());
                let agent = agents::create_agent(&db, &email, &name, &password)
                    .await
                    .map_err(operator_error)?;
                println!("agent {} <{}> created", agent.id, agent.email);
                if generated {
                    println!("password: {password}");
                }
            }
            Command::CreateProject { name, owner } => {
                let owner_email = EmailAddress::parse(&owner, "owner").map_err(operator_error)?;
                let owner = agents::find_by_email(&db, &owner_email)
                    .await
                    .map_err(operator_error)?
                    .with_context(|| format!("no agent has the email {owner_email}"))?;
                let project = projects::create_project(&db, owner.id, &name)
                    .await
                    .map_err(operator_error)?;
                println!("project {} created", project.id);
                println!("public key: {}", project.public_key);
            }
            Command::AddMember {
                project,
                email,
                role,
            } => {
                let project_id = parse_id(&project, "project").map_err(operator_error)?;
                projects::insert_member(&db, project_id, &email, role.into())
                    .await
                    .map_err(operator_error)?;
                println!("{email} added to project {project_id}");
            }
            Command::Export {
                project,
                agent,
                from,
                to,
                time_zone,
                format,
            } => {
                export_now(
                    &settings,
                    db,
                    &project,
                    &agent,
                    (&from, &to, time_zone.as_deref()),
                    format.into(),
                )
                .await?
            }
            Command::Seed {
                project,
                contacts,
                seed,
            } => {
                let project_id = parse_id(&project, "project").map_err(operator_error)?;
                let started = std::time::Instant::now();
                let inserted =
                    crate::seed::seed_contacts(&db, project_id, contacts, seed, |done| {
                        if done % 100_000 == 0 || done == contacts {
                            println!("{done} contacts inserted");
                        }
                    })
                    .await
                    .map_err(operator_error)?;
                let seconds = started.elapsed().as_secs_f64();
                println!(
                    "{inserted} contacts added to project {project_id} in {seconds:.1} s ({:.0} rows/s)",
                    inserted as f64 / seconds.max(0.001)
                );
            }
        }
        Ok(())
    }
}

async fn export_now(
    settings: &Settings,
    db: sea_orm::DatabaseConnection,
    project: &str,
    agent_email: &str,
    (from, to, time_zone): (&str, &str, Option<&str>),
    format: crate::domain::export_choices::ExportFormat,
) -> anyhow::Result<()> {
    use crate::domain::{access, exports};
    use crate::jobs::export_run::{Control, RunError};
    use crate::jobs::queue;

    let project_id = parse_id(project, "project").map_err(operator_error)?;
    let email = EmailAddress::parse(agent_email, "agent").map_err(operator_error)?;
    let agent = agents::find_by_email(&db, &email)
        .await
        .map_err(operator_error)?
        .with_context(|| format!("no agent has the email {email}"))?;
    let access = access::require_role(&db, agent.id, project_id, Role::Agent)
        .await
        .map_err(operator_error)?;
    let range = exports::DateRange::parse(from, to, time_zone).map_err(operator_error)?;
    let choices = exports::ExportChoices {
        format,
        time_zone: crate::domain::dates::parse_zone(time_zone, "time-zone")
            .map_err(operator_error)?,
        ..Default::default()
    };
    let job = exports::request_export(&db, &access, range, &choices, 1)
        .await
        .map_err(operator_error)?;
    let bus: std::sync::Arc<dyn crate::pubsub::EventBus> =
        std::sync::Arc::new(crate::pubsub::InProcessBus::default());
    // The same base as the server's links: PUBLIC_URL, else LISTEN_ADDR.
    crate::public_url::link_base(settings.public_url.as_deref(), settings.listen_addr)
        .warn_if_guessed(settings.listen_addr);
    let adapters = crate::startup::ExportAdapters::open(settings, Default::default()).await?;
    let runner = adapters.runner(settings, &db, &bus).await?;
    let worker = "command-line";
    // No heartbeat here: the lease covers the whole run.
    let lease = std::time::Duration::from_secs(24 * 3600);
    let job = queue::claim_job(&db, job.id, worker, lease)
        .await
        .map_err(operator_error)?
        .context("the export job could not be claimed")?;
    let started = std::time::Instant::now();
    let span = tracing::info_span!("export", job = %job.id, attempt = job.attempts);
    let control = Control::default();
    match tracing::Instrument::instrument(runner.run(&job, worker, &control), span).await {
        Ok(()) => {}
        Err(RunError::Transient(reason) | RunError::Permanent(reason)) => {
            queue::finish(
                &db,
                job.id,
                worker,
                exports::ExportStatus::Failed,
                Some(&reason),
            )
            .await
            .map_err(operator_error)?;
            anyhow::bail!("export failed: {reason}");
        }
        Err(other) => anyhow::bail!("export stopped: {other:?}"),
    }
    let done = exports::reload(&db, job.id).await.map_err(operator_error)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "export {} completed: {} rows, {} bytes in {seconds:.2} s ({:.0} rows/s)",
        done.id,
        done.rows_written,
        done.file_bytes.unwrap_or_default(),
        done.rows_written as f64 / seconds.max(0.001)
    );
    if let Some(key) = &done.object_key {
        let link = adapters
            .store
            .download_url(key, settings.exports.link_ttl)
            .await
            .map_err(|error| anyhow::anyhow!("cannot make a link: {error}"))?;
        println!("link: {}", link.url);
    }
    Ok(())
}

/// The first start's login, said once. A person at a terminal reads the
/// password there; a log collector gets an event naming an owner-only file
/// instead, so that no password ever lands in collected logs.
fn announce_first_start(login: &OwnerLogin, data_dir: &Path) -> anyhow::Result<()> {
    if !telemetry::is_json() {
        println!();
        println!("  First start: an owner account and a first project were created.");
        println!("  email:    {}", login.email);
        println!("  password: {}", login.password);
        println!("  (shown once; log in with the `login` mutation in the playground)");
        println!();
        return Ok(());
    }
    let path = data_dir.join(FIRST_START_LOGIN_FILE);
    std::fs::write(
        &path,
        format!("email: {}\npassword: {}\n", login.email, login.password),
    )
    .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    file_modes::tighten(&path);
    tracing::info!(
        email = %login.email,
        password_file = %path.display(),
        "first start: an owner account and a first project were created; the password is in the file (delete it once read)"
    );
    Ok(())
}

/// Under `DATA_DIR`, where JSON mode leaves the first start's login.
pub const FIRST_START_LOGIN_FILE: &str = "first-start-login.txt";

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = App::build(settings.clone()).await?;
    if let Some(login) = app.owner_login() {
        announce_first_start(login, &settings.data_dir)?;
    }
    let playground = if settings.playground {
        format!("http://{}/graphql", app.local_addr())
    } else {
        "off (PLAYGROUND=false)".to_owned()
    };
    tracing::info!(
        address = %app.local_addr(),
        playground,
        "contacts service listening"
    );
    app.run_until(shutdown_signal()).await
}
