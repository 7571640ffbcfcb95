//! A revocation feed for the filter's tests: serves the pages a test sets, counts the polls
//! and the cursors they carry, and breaks on demand (500, garbage, a huge body, a closed
//! connection). The demo sign-in service serves the real one; this one lets a test choose
//! every answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// How the feed answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFault {
    Ok,
    Status500,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a 9 MiB body.
    Huge,
    /// The connection closed without an answer.
    Close,
}

#[derive(Debug)]
struct State {
    fault: FeedFault,
    /// Every entry ever added, in order; the cursor is the count seen.
    entries: Vec<Value>,
    polls: u64,
    cursors: Vec<Option<String>>,
    /// The most entries a page carries (`more` is set on a cut page).
    page_limit: usize,
}

/// A running feed.
pub struct Feed {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Feed {
    pub fn start() -> Feed {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            fault: FeedFault::Ok,
            entries: Vec::new(),
            polls: 0,
            cursors: Vec::new(),
            page_limit: usize::MAX,
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Feed { port, state }
    }

    /// Adds an entry (a JSON object of the feed's format).
    pub fn revoke(&self, entry: Value) {
        self.state.lock().unwrap().entries.push(entry);
    }

    /// Cuts pages to `entries`, marking a cut page `more`.
    pub fn page_limit(&self, entries: usize) {
        self.state.lock().unwrap().page_limit = entries;
    }

    pub fn fault(&self, fault: FeedFault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// How many polls came so far.
    pub fn polls(&self) -> u64 {
        self.state.lock().unwrap().polls
    }

    /// The cursor of each poll, in order.
    pub fn cursors(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().cursors.clone()
    }
}

/// Waits until `envoy`'s filter has had two good polls of its revocation feed: its tokens
/// wait for the first when the configuration has `fail_closed_after_seconds`, and the VM
/// that polled may not be a worker's (the others take the list on their next tick, long
/// before the second poll).
pub fn first_poll(envoy: &super::Envoy) {
    super::wait_until(
        "two good polls of the revocation feed",
        Duration::from_secs(20),
        || {
            envoy
                .stats("wasmcustom.tollgate.revocation.polls_ok")
                .values()
                .sum::<u64>()
                >= 2
        },
    );
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let cursor = target.split_once("?cursor=").map(|(_, c)| c.to_owned());
    let (fault, body) = {
        let mut state = state.lock().unwrap();
        state.polls += 1;
        state.cursors.push(cursor.clone());
        let seen = cursor.as_deref().and_then(|c| c.parse::<usize>().ok());
        let (reset, from) = match seen {
            Some(n) if n <= state.entries.len() => (false, n),
            _ => (true, 0),
        };
        let to = state
            .entries
            .len()
            .min(from.saturating_add(state.page_limit));
        let page = json!({
            "cursor": to.to_string(),
            "reset": reset,
            "more": to < state.entries.len(),
            "revoked": state.entries[from..to].to_vec(),
        });
        (state.fault, page.to_string().into_bytes())
    };
    let mut stream = reader.into_inner();
    let (status, body) = match fault {
        FeedFault::Ok => ("200 OK", body),
        FeedFault::Status500 => (
            "500 Internal Server Error",
            b"{\"error\":\"down\"}".to_vec(),
        ),
        FeedFault::Garbage => ("200 OK", b"<html>not a feed</html>".to_vec()),
        FeedFault::Huge => ("200 OK", vec![b' '; 9 * 1024 * 1024]),
        FeedFault::Close => return,
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    let mut rest = Vec::new();
    let _ = stream.take(0).read_to_end(&mut rest);
}
