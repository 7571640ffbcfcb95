//! tollgate-signin: a demo sign-in service for tollgate. It serves a login page, checks the
//! users of its configuration, and issues access and refresh tokens signed with the filter's
//! master key. Not part of the filter; for demos and the browser round-trip test.
//!
//! `tollgate-signin [--config demo/signin/signin.json] [--listen ADDR] [--trust HOST]...`
//! The master key is read from the environment variable named by `secret_env`.

mod form;
mod pages;
mod return_url;
mod service;
mod settings;

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use service::{Incoming, Service};
use settings::Settings;

/// The largest request body read, in bytes.
const MAX_BODY: u64 = 64 * 1024;

fn fail(message: &str) -> ! {
    eprintln!("tollgate-signin: {message}");
    std::process::exit(2);
}

fn main() {
    let mut config = "demo/signin/signin.json".to_string();
    let mut listen = None;
    let mut trusted = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            fail(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--config" => config = value,
            "--listen" => listen = Some(value),
            "--trust" => trusted.push(value),
            _ => fail(&format!("unknown option {flag}")),
        }
    }
    let mut settings = Settings::load(&config).unwrap_or_else(|e| fail(&e));
    settings.trusted_hosts.extend(trusted);
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    let secret = std::env::var(&settings.secret_env).unwrap_or_else(|_| {
        fail(&format!(
            "environment variable {} is not set",
            settings.secret_env
        ))
    });
    let server = tiny_http::Server::http(&settings.listen)
        .unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", settings.listen)));
    match server.server_addr().to_ip() {
        Some(addr) => println!("listening on http://{addr}"),
        None => println!("listening on {}", settings.listen),
    }
    let service = Service::new(settings, &secret);
    for request in server.incoming_requests() {
        serve(&service, request);
    }
}

fn serve(service: &Service, mut request: tiny_http::Request) {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut body = String::new();
    let read = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
    let incoming = Incoming {
        method: request.method().as_str().to_ascii_uppercase(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect(),
        body,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let reply = match read {
        Ok(_) => service.handle(&incoming, now),
        Err(_) => service::Reply {
            status: 400,
            headers: Vec::new(),
            body: "unreadable body\n".into(),
        },
    };
    let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
    for (name, value) in &reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}
