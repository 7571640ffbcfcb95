//! A revocation feed for the filter's tests: serves the pages a test sets, counts the polls
//! and the cursors they carry, and breaks on demand (500, garbage, a huge body, a closed
//! connection). The demo sign-in service serves the real one; this one lets a test choose
//! every answer.
//!
//! A cursor is `<epoch>-<position>`: a restart ([`Feed::restart`]) starts a new epoch, and a
//! cursor of another epoch gets a reset, cut into pages like any answer.

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
    epoch: u64,
    /// Pages after the first of an answer (asked with a cursor of this epoch, past 0) fail
    /// with 500.
    stall_later_pages: bool,
    /// The cursor every page carries instead of its own.
    cursor_override: Option<String>,
    /// Every page says more, with cursor `c-a` or, asked `c-a`, `c-b`: a cycle.
    cycle: bool,
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
            epoch: 1,
            stall_later_pages: false,
            cursor_override: None,
            cycle: false,
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

    /// A gap: a position that carries no entry (a page of gaps only is empty, with `more`
    /// when entries follow).
    pub fn gap(&self) {
        self.state.lock().unwrap().entries.push(Value::Null);
    }

    /// The feed restarts keeping the entries `keep` says: every cursor given before gets a
    /// reset.
    pub fn restart(&self, keep: impl Fn(&Value) -> bool) {
        let mut state = self.state.lock().unwrap();
        state.entries.retain(|e| e.is_null() || keep(e));
        state.epoch += 1;
    }

    /// While set, every page but an answer's first fails (500).
    pub fn stall_later_pages(&self, stall: bool) {
        self.state.lock().unwrap().stall_later_pages = stall;
    }

    /// Every page carries `cursor` instead of its own.
    pub fn cursor_override(&self, cursor: Option<&str>) {
        self.state.lock().unwrap().cursor_override = cursor.map(str::to_owned);
    }

    /// While set, the pages go round a cycle of two cursors, each saying more follows.
    pub fn cycle_cursors(&self, cycle: bool) {
        self.state.lock().unwrap().cycle = cycle;
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
        let epoch = state.epoch;
        let seen = cursor.as_deref().and_then(|c| {
            let (e, n) = c.split_once('-')?;
            (e.parse::<u64>().ok()? == epoch).then_some(n.parse::<usize>().ok()?)
        });
        let (reset, from) = match seen {
            Some(n) if n <= state.entries.len() => (false, n),
            _ => (true, 0),
        };
        let to = state
            .entries
            .len()
            .min(from.saturating_add(state.page_limit));
        let mut page = json!({
            "cursor": state.cursor_override.clone().unwrap_or(format!("{epoch}-{to}")),
            "reset": reset,
            "more": to < state.entries.len(),
            "revoked": state.entries[from..to].iter().filter(|e| !e.is_null()).cloned().collect::<Vec<_>>(),
        });
        if state.cycle {
            let next = if cursor.as_deref() == Some("c-a") {
                "c-b"
            } else {
                "c-a"
            };
            page["cursor"] = json!(next);
            page["more"] = json!(true);
        }
        let fault = if state.stall_later_pages && from > 0 {
            FeedFault::Status500
        } else {
            state.fault
        };
        (fault, page.to_string().into_bytes())
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
