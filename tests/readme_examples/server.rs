//! The `contacts` binary started as the README's first command starts it:
//! embedded defaults (SQLite, local export folder, mail to files) in a
//! fresh data folder, the pretty log a person reads.

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Server {
    child: std::process::Child,
    address: String,
    data_dir: tempfile::TempDir,
    output: PathBuf,
}

impl Server {
    pub async fn start() -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let output = data_dir.path().join("server.out");
        let log = std::fs::File::create(&output).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"))
            .env_clear()
            .env("DATA_DIR", data_dir.path())
            .env("LISTEN_ADDR", &address)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Server {
            child,
            address,
            data_dir,
            output,
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/readyz", self.address);
        while Instant::now() < deadline {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start:\n{}", self.output_text());
    }

    fn output_text(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// The owner's password, from the lines the first start prints once.
    pub fn first_start_password(&self) -> String {
        let output = self.output_text();
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix("password:"))
            .map(|password| password.trim().to_owned())
            .unwrap_or_else(|| panic!("no first-start password in:\n{output}"))
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.path().join("mail")
    }

    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.address)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
