//! Not a test of the service: a loud line in the output of every test run
//! saying whether the API suite also ran against PostgreSQL.

fn main() {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            println!(
                "PostgreSQL suite: the API tests run against PostgreSQL (TEST_DATABASE_URL is set)."
            );
        }
        _ => {
            let banner = "!".repeat(78);
            println!("{banner}");
            println!("!! PostgreSQL suite SKIPPED: the API tests ran on SQLite only.");
            println!("!! Run them on PostgreSQL too with");
            println!(
                "!!     TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test --test api --test pubsub_postgres"
            );
            println!("!! (each test creates and drops its own database; .ci/run does this.)");
            println!("!! The database-outage test (hardening) only runs there.");
            println!("{banner}");
        }
    }
}
