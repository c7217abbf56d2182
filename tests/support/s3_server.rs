//! A real S3 server inside the test process: s3s-fs serving a temporary
//! folder over HTTP on 127.0.0.1, with SigV4 authentication, so tests talk
//! the S3 protocol to something that checks signatures, without any service
//! installed on the machine.
//!
//! Include it from a test crate with
//! `#[allow(dead_code)] #[path = "support/s3_server.rs"] mod s3_server;` (from
//! `tests/x.rs`; `../support/s3_server.rs` from `tests/x/main.rs`). The
//! `allow` is there because no one test crate uses every helper.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub const ACCESS_KEY: &str = "test-access-key";
pub const SECRET_KEY: &str = "test-secret-key-0123456789";
pub const REGION: &str = "us-east-1";

/// A running server; stopped when dropped.
pub struct S3TestServer {
    /// `http://127.0.0.1:PORT`, for path-style requests.
    pub endpoint: String,
    pub addr: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// A bucket created at start.
    pub bucket: String,
    root: tempfile::TempDir,
    task: Option<JoinHandle<()>>,
}

impl S3TestServer {
    /// Starts a server with one empty bucket named `bucket`.
    pub async fn start(bucket: &str) -> S3TestServer {
        let root = tempfile::tempdir().expect("temporary folder for the S3 server");
        // s3s-fs keeps each bucket as a folder under its root.
        std::fs::create_dir(root.path().join(bucket)).expect("bucket folder");

        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs file system");
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            // Connections live in this set: aborting the accept task drops
            // it, which aborts every open (keep-alive) connection too, so a
            // stopped server really is unreachable.
            let mut connections = JoinSet::new();
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    // Out of file descriptors, say: wait instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = connection.await;
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
        });

        S3TestServer {
            endpoint: format!("http://{addr}"),
            addr,
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            region: REGION.to_owned(),
            bucket: bucket.to_owned(),
            root,
            task: Some(task),
        }
    }

    /// The folder holding the buckets.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Where the object `key` of `bucket` lies on disk.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        key.split('/')
            .fold(self.root.path().join(bucket), |path, segment| {
                path.join(segment)
            })
    }

    /// The bytes of an object of the default bucket, if it exists.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.object_path(&self.bucket, key)).ok()
    }

    /// Stops accepting and closes every open connection, to play S3 being
    /// down. The port is closed when this returns.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
