//! A small HTTP/1.1 upstream that answers every request with what it received: method, path
//! and headers, as JSON (or as an HTML page for a browser). Used by `make run` and the tests.
//!
//! `echo-upstream [--listen 127.0.0.1:18080] [--exit-with-stdin]`; port 0 picks a free port.
//! The first line on stdout is `listening on http://<address>`. With `--exit-with-stdin` it
//! stops when its standard input closes (so a test harness never leaves it behind).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// The largest request head accepted, in bytes.
const MAX_HEAD: usize = 1 << 20;

struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body_len: usize,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn main() {
    let mut listen = "127.0.0.1:18080".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(addr) => listen = addr,
                None => usage(),
            },
            "--exit-with-stdin" => {
                thread::spawn(|| {
                    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                    std::process::exit(0);
                });
            }
            _ => usage(),
        }
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo-upstream: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(e) => {
            eprintln!("echo-upstream: {e}");
            std::process::exit(1);
        }
    }
    let _ = std::io::stdout().flush();
    for stream in listener.incoming().flatten() {
        thread::spawn(move || serve(stream));
    }
}

fn usage() -> ! {
    eprintln!("usage: echo-upstream [--listen ADDRESS:PORT] [--exit-with-stdin]");
    std::process::exit(2);
}

fn serve(stream: TcpStream) {
    // The head and the body are two writes: without this the body waits for a delayed
    // acknowledgement of the head (40 ms per request on a kept-alive connection).
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = writer;
    while let Some(request) = read_request(&mut reader) {
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if respond(&mut writer, &request).is_err() || close {
            return;
        }
    }
}

fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let n = reader
        .take(u64::try_from(*budget).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    if n == 0 || !line.ends_with(b"\n") {
        return None;
    }
    *budget = budget.checked_sub(n)?;
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Some(line)
}

fn read_request(reader: &mut impl BufRead) -> Option<Received> {
    let mut budget = MAX_HEAD;
    let request_line = read_line(reader, &mut budget)?;
    let request_line = String::from_utf8_lossy(&request_line).into_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = String::from_utf8_lossy(line.get(..colon)?).to_ascii_lowercase();
        let value = String::from_utf8_lossy(line.get(colon + 1..)?)
            .trim()
            .to_string();
        headers.push((name, value));
    }
    let mut received = Received {
        method,
        path,
        headers,
        body_len: 0,
    };
    received.body_len = read_body(reader, &received)?;
    Some(received)
}

/// Reads and discards the body; returns its length.
fn read_body(reader: &mut impl BufRead, request: &Received) -> Option<usize> {
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut total = 0;
        loop {
            let mut budget = 1024;
            let line = read_line(reader, &mut budget)?;
            let size_text = String::from_utf8_lossy(&line);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                let mut budget = MAX_HEAD;
                while !read_line(reader, &mut budget)?.is_empty() {}
                return Some(total);
            }
            std::io::copy(
                &mut reader.take(u64::try_from(size).ok()?),
                &mut std::io::sink(),
            )
            .ok()?;
            let mut budget = 4;
            read_line(reader, &mut budget)?;
            total += size;
        }
    }
    let len: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(
        &mut reader.take(u64::try_from(len).ok()?),
        &mut std::io::sink(),
    )
    .ok()?;
    Some(len)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn respond(writer: &mut impl Write, request: &Received) -> std::io::Result<()> {
    // Tests that act as a browser still read the JSON answer with `x-echo-format: json`.
    let wants_html = request
        .header("accept")
        .is_some_and(|a| a.contains("text/html"))
        && request.header("x-echo-format") != Some("json");
    let (content_type, body) = if wants_html {
        ("text/html; charset=utf-8", html_page(request))
    } else {
        let json = serde_json::json!({
            "method": request.method,
            "path": request.path,
            "headers": request.headers,
            "body_length": request.body_len,
        });
        ("application/json", format!("{json}\n"))
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        writer.write_all(body.as_bytes())?;
    }
    writer.flush()
}

fn html_page(request: &Received) -> String {
    let user = request.header("x-auth-user").unwrap_or("(none)");
    let kind = request.header("x-auth-type").unwrap_or("(none)");
    let role = request.header("x-auth-role").unwrap_or("(none)");
    let mut rows = String::new();
    for (name, value) in &request.headers {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            html_escape(name),
            html_escape(value)
        ));
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>echo-upstream</title></head>\n<body>\n<h1>Hello from the upstream</h1>\n<p>Signed in as <strong id=\"user\">{}</strong> (type <span id=\"type\">{}</span>, role <span id=\"role\">{}</span>).</p>\n<p>{} {}</p>\n<table>\n{}</table>\n</body></html>\n",
        html_escape(user),
        html_escape(kind),
        html_escape(role),
        html_escape(&request.method),
        html_escape(&request.path),
        rows
    )
}
