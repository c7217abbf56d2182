//! The real `contacts` binary in a process of its own, for what must not
//! take the test process down with it (a crash) or needs signals.

use std::time::{Duration, Instant};

/// A free port on the loopback interface for a child process to bind.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `contacts` binary, as an operator runs it.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub address: String,
    log: std::path::PathBuf,
}

impl ServerProcess {
    pub fn spawn(
        database_url: &str,
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let address = format!("127.0.0.1:{}", free_port());
        let log = data_dir.join("server.log");
        // Logs go to stdout; what may come on stderr goes to the same file.
        let log_file = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("DATA_DIR", data_dir)
            .env("LISTEN_ADDR", &address)
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("the contacts binary starts");
        ServerProcess {
            child,
            address,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_until_up(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client
                .get(format!("http://{}/readyz", self.address))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the server never came up: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn terminate(&self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a pid this test spawned; no memory is involved.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM was not delivered");
    }

    pub async fn wait_for_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}
