use std::process::ExitCode;

use clap::Parser;

// Serving a page of contacts allocates for every row, value and field;
// mimalloc made that path about a tenth cheaper than the system allocator
// (BENCHMARKS.md, contacts section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match contacts::cli::Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            contacts::telemetry::report_fatal(&error);
            ExitCode::FAILURE
        }
    }
}
