use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    contacts::cli::Cli::parse().run().await
}
