//! Indexes of the contacts list: one per sort order for keyset pagination,
//! and on PostgreSQL trigram indexes for substring search.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each sort order walks one of these from any cursor: `(project_id, key,
/// id)` makes the first page and a page a million rows deep cost the same.
/// Contacts without a name or email are listed after the others, ordered by
/// id; the partial indexes serve that tail directly.
const KEYSET_INDEXES: [&str; 6] = [
    "CREATE INDEX IF NOT EXISTS idx_contacts_list_created ON contacts (project_id, created_at, id)",
    "CREATE INDEX IF NOT EXISTS idx_contacts_list_last_seen ON contacts (project_id, last_seen_at, id)",
    "CREATE INDEX IF NOT EXISTS idx_contacts_list_name ON contacts (project_id, name, id)",
    "CREATE INDEX IF NOT EXISTS idx_contacts_list_email ON contacts (project_id, email, id)",
    "CREATE INDEX IF NOT EXISTS idx_contacts_list_no_name ON contacts (project_id, id) WHERE name IS NULL",
    "CREATE INDEX IF NOT EXISTS idx_contacts_list_no_email ON contacts (project_id, id) WHERE email IS NULL",
];

/// `ILIKE '%term%'` over these is answered from the indexes (a bitmap OR of
/// three scans) instead of reading every contact of the project. SQLite has
/// no equivalent that LIKE can use; it scans the project's rows.
const TRIGRAM_INDEXES: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS idx_contacts_search_name ON contacts USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS idx_contacts_search_email ON contacts USING gin (email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS idx_contacts_search_phone ON contacts USING gin (phone gin_trgm_ops)",
];

const ALL_INDEXES: [&str; 9] = [
    "idx_contacts_list_created",
    "idx_contacts_list_last_seen",
    "idx_contacts_list_name",
    "idx_contacts_list_email",
    "idx_contacts_list_no_name",
    "idx_contacts_list_no_email",
    "idx_contacts_search_name",
    "idx_contacts_search_email",
    "idx_contacts_search_phone",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in KEYSET_INDEXES {
            db.execute_unprepared(sql).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                .await?;
            for sql in TRIGRAM_INDEXES {
                db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for name in ALL_INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        Ok(())
    }
}
