//! One normalised search column on PostgreSQL: the name lower-cased with
//! its accents folded (so `garcia` finds García), the email and the phone,
//! kept by PostgreSQL itself as a generated column.
//!
//! A search walks the newest-first list until it has a page of matches;
//! with the column carried in the list's index, that walk reads the index
//! alone instead of every skipped contact's row. A trigram index on the
//! column serves rare terms. SQLite keeps matching the three columns.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::search_folding::{ACCENTED, UNACCENTED};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // The unit separator between the parts: a search term never holds
        // a control character, so no match spans two parts.
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION contact_search_text(name text, email text, phone text) \
             RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ \
             SELECT translate(lower(coalesce(name, '')), '{ACCENTED}', '{UNACCENTED}') \
             || chr(31) || coalesce(email, '') || chr(31) || coalesce(phone, '') $$"
        ))
        .await?;
        for sql in [
            "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS search_text text \
             GENERATED ALWAYS AS (contact_search_text(name, email, phone)) STORED",
            "CREATE INDEX IF NOT EXISTS idx_contacts_list_created_search \
             ON contacts (project_id, created_at, id) INCLUDE (search_text)",
            "DROP INDEX IF EXISTS idx_contacts_list_created",
            "CREATE INDEX IF NOT EXISTS idx_contacts_search_text \
             ON contacts USING gin (search_text gin_trgm_ops)",
            // With the default sample the planner guesses a few dozen
            // matches for a common term such as `garc` (there were 13,000
            // in a million) and sorts every trigram match instead of
            // walking the list's index; a larger sample estimates within
            // a few percent.
            "ALTER TABLE contacts ALTER COLUMN search_text SET STATISTICS 1000",
            "DROP INDEX IF EXISTS idx_contacts_search_name",
            "DROP INDEX IF EXISTS idx_contacts_search_email",
            "DROP INDEX IF EXISTS idx_contacts_search_phone",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for sql in [
            "CREATE INDEX IF NOT EXISTS idx_contacts_list_created ON contacts (project_id, created_at, id)",
            "CREATE INDEX IF NOT EXISTS idx_contacts_search_name ON contacts USING gin (name gin_trgm_ops)",
            "CREATE INDEX IF NOT EXISTS idx_contacts_search_email ON contacts USING gin (email gin_trgm_ops)",
            "CREATE INDEX IF NOT EXISTS idx_contacts_search_phone ON contacts USING gin (phone gin_trgm_ops)",
            "ALTER TABLE contacts DROP COLUMN IF EXISTS search_text",
            "DROP FUNCTION IF EXISTS contact_search_text(text, text, text)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
