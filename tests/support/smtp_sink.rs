//! A small SMTP server inside the test process that keeps what it receives:
//! plain SMTP on 127.0.0.1 (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing,
//! RSET, NOOP, QUIT; no AUTH, no TLS), so tests send real mail over a real
//! connection and read it back.
//!
//! Include it from a test crate with
//! `#[allow(dead_code)] #[path = "support/smtp_sink.rs"] mod smtp_sink;` (from
//! `tests/x.rs`; `../support/smtp_sink.rs` from `tests/x/main.rs`). The
//! `allow` is there because no one test crate uses every helper.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Longest command or data line read; longer ones end the session, so a
/// misbehaving client cannot fill the test's memory.
const MAX_LINE: usize = 1024 * 1024;

/// One message as the sink accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The address given in `MAIL FROM:<...>`.
    pub from: String,
    /// The addresses given in `RCPT TO:<...>`, in order.
    pub recipients: Vec<String>,
    /// The message as sent after DATA, dot-unstuffed, with CRLF line ends and
    /// without the final `.` line.
    pub data: Vec<u8>,
}

impl ReceivedMail {
    pub fn data_text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The value of the first header named `name` (case-insensitive), with
    /// folded lines joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.data_text();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((field, rest)) = line.split_once(':')
                && field.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim_start().to_owned());
            }
        }
        value.map(|v| v.trim().to_owned())
    }
}

/// How the sink behaves.
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// Answer `451` (try again later) to the recipients of this many
    /// transactions before accepting any, as a greylisting server does.
    pub fail_first: usize,
}

/// A running sink; stopped when dropped.
pub struct SmtpSink {
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    count: watch::Receiver<usize>,
    /// Transactions refused so far with 451.
    refused: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    count: watch::Sender<usize>,
    fail_first: usize,
    refused: Arc<AtomicUsize>,
}

impl SmtpSink {
    /// Starts a sink that accepts everything.
    pub async fn start() -> SmtpSink {
        SmtpSink::start_with(SinkOptions::default()).await
    }

    pub async fn start_with(options: SinkOptions) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (count_tx, count) = watch::channel(0);
        let shared = Arc::new(Shared {
            messages: Arc::clone(&messages),
            count: count_tx,
            fail_first: options.fail_first,
            refused: Arc::clone(&refused),
        });
        let task = tokio::spawn(async move {
            // Sessions live in this set, so stopping the sink ends them too.
            let mut sessions = JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = Arc::clone(&shared);
                sessions.spawn(async move {
                    let _ = session(socket, &shared).await;
                });
                while sessions.try_join_next().is_some() {}
            }
        });
        SmtpSink {
            addr,
            messages,
            count,
            refused,
            task: Some(task),
        }
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, as lettre's `from_url` reads it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The messages accepted so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.messages.lock().expect("sink lock").clone()
    }

    /// How many transactions were refused with 451.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages were accepted and gives them all;
    /// panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut count = self.count.clone();
        let reached = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        match reached {
            Ok(Ok(_)) => self.messages(),
            _ => panic!(
                "expected {n} messages within {timeout:?}, got {}",
                self.messages().len()
            ),
        }
    }

    /// Stops accepting and ends open sessions; the port is closed when this
    /// returns.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The envelope of the transaction in progress.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    recipients: Vec<String>,
    refused: bool,
}

async fn session(socket: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut transaction = Transaction::default();
    write
        .write_all(b"220 sink.test ESMTP test sink\r\n")
        .await?;

    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                transaction = Transaction::default();
                b"250-sink.test greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
            "HELO" => {
                transaction = Transaction::default();
                b"250 sink.test\r\n"
            }
            "MAIL" => match path_argument(argument, "FROM:") {
                Some(from) => {
                    transaction = Transaction {
                        from: Some(from),
                        ..Transaction::default()
                    };
                    b"250 2.1.0 OK\r\n"
                }
                None => b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (&transaction.from, path_argument(argument, "TO:")) {
                (None, _) => b"503 5.5.1 MAIL first\r\n",
                (Some(_), None) => b"501 5.5.4 Syntax: RCPT TO:<address>\r\n",
                (Some(_), Some(recipient)) => {
                    if transaction.refused || take_refusal(shared) {
                        transaction.refused = true;
                        b"451 4.7.1 Greylisted, try again later\r\n"
                    } else {
                        transaction.recipients.push(recipient);
                        b"250 2.1.5 OK\r\n"
                    }
                }
            },
            "DATA" => {
                if transaction.recipients.is_empty() {
                    b"503 5.5.1 RCPT first\r\n"
                } else {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let Some(data) = read_data(&mut reader).await? else {
                        return Ok(());
                    };
                    let mail = ReceivedMail {
                        from: transaction.from.take().unwrap_or_default(),
                        recipients: std::mem::take(&mut transaction.recipients),
                        data,
                    };
                    transaction = Transaction::default();
                    let count = {
                        let mut messages = shared.messages.lock().expect("sink lock");
                        messages.push(mail);
                        messages.len()
                    };
                    shared.count.send_replace(count);
                    b"250 2.0.0 OK queued\r\n"
                }
            }
            "RSET" => {
                transaction = Transaction::default();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "VRFY" => b"252 2.5.2 Cannot verify\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Counts one refused transaction while fewer than `fail_first` were.
fn take_refusal(shared: &Shared) -> bool {
    shared
        .refused
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < shared.fail_first).then_some(n + 1)
        })
        .is_ok()
}

/// `<address>` after `FROM:` or `TO:`, ignoring parameters such as
/// `BODY=8BITMIME`.
fn path_argument(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

/// One line without its line end; `None` at end of stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long or cut off",
        ));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(line))
}

/// The message after DATA up to the `.` line, dot-unstuffed (RFC 5321
/// 4.5.2), with CRLF line ends; `None` if the client went away.
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    loop {
        let Some(line) = read_line(reader).await? else {
            return Ok(None);
        };
        if line == b"." {
            return Ok(Some(data));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
}
