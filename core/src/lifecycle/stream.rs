//! One request's callbacks: its headers decided (or held for an issuer's keys), and its form
//! body read for credential fields before any of it goes on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::counters::Counters;
use super::issuer_keys::{Handed, KeyFetcher};
use super::root_host::RootHost;
use crate::config::Config;
use crate::host::{self, BodyScan, Host, HostError, Verdict, HOLD_BODY_BYTES};
use crate::oidc::flow::Pending;
use crate::oidc::renewed::OldCookies;
use crate::worker::WorkerState;

/// What the host does with the request after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Let it (or this part of it) on.
    Continue,
    /// Hold it: answered, held for keys, or its body is being read.
    Pause,
}

/// One request, with what it shares with its worker.
pub struct RequestFlow {
    context_id: u32,
    config: Option<Rc<Config>>,
    worker: Rc<RefCell<WorkerState>>,
    counters: Rc<Counters>,
    fetcher: Rc<RefCell<KeyFetcher>>,
    /// Set while the request is held for an issuer's keys: its body and trailers wait too
    /// (letting them on would let the request on).
    held: Option<Rc<Cell<bool>>>,
    /// A form body being read for credential fields (see [`RequestFlow::on_body`]).
    form: Option<FormBody>,
    /// Set while the request waits for a call to the OpenID provider.
    pending: Option<Pending>,
    /// Cookies for the upstream's response (a refreshed session).
    response_cookies: Vec<String>,
    /// What the worker handed over when it decided the request again after holding it.
    handed: Rc<RefCell<Handed>>,
}

/// A form body being read, and how much of what the host buffers was read already.
struct FormBody {
    scan: BodyScan,
    /// Bytes of the buffered body already read.
    read: usize,
    /// Past [`HOLD_BODY_BYTES`] (or released after a key fetch): each chunk goes on once
    /// read.
    streaming: bool,
}

impl RequestFlow {
    pub(super) fn new(
        context_id: u32,
        config: Option<Rc<Config>>,
        worker: Rc<RefCell<WorkerState>>,
        counters: Rc<Counters>,
        fetcher: Rc<RefCell<KeyFetcher>>,
    ) -> RequestFlow {
        RequestFlow {
            context_id,
            config,
            worker,
            counters,
            fetcher,
            held: None,
            form: None,
            pending: None,
            response_cookies: Vec::new(),
            handed: Rc::default(),
        }
    }

    /// Whether the request is held for an issuer's keys (decided again by
    /// [`super::Filter::tick`] or [`super::Filter::on_call_answer`]).
    pub fn is_held(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.get())
    }

    /// The request's headers (`end_of_stream`: no body follows): decided and applied through
    /// `host`, or held for an issuer's keys (`root` reads the shared fetch record).
    pub fn on_headers(
        &mut self,
        host: &impl Host,
        root: &impl RootHost,
        end_of_stream: bool,
    ) -> Step {
        let Some(config) = self.config.clone() else {
            // Unreachable once configured; fail closed rather than let the request on.
            let _ = host.respond(503, &[("content-type", "text/plain")], b"not configured\n");
            return Step::Pause;
        };
        let (counters, worker) = (Rc::clone(&self.counters), Rc::clone(&self.worker));
        // The host runs one request callback at a time: the state is never borrowed here.
        let Ok(mut worker) = worker.try_borrow_mut() else {
            let _ = host.respond(503, &[("content-type", "text/plain")], b"busy\n");
            return Step::Pause;
        };
        let count = |c| counters.count(c);
        let after =
            host::on_request_headers(host, &config, &mut worker, end_of_stream, true, count);
        // A form body follows: it is read before any of it goes on. (The headers cannot wait
        // for it: a paused header callback gets no body callbacks until it is resumed.)
        self.form = after.body.filter(|_| !end_of_stream).map(|scan| FormBody {
            scan,
            read: 0,
            streaming: false,
        });
        let wait = match after.verdict {
            Verdict::Continue => {
                // A session renewed moments ago by another request: its cookies go out on
                // the upstream's response.
                self.response_cookies = after.cookies;
                return Step::Continue;
            }
            Verdict::Answered => return Step::Pause,
            Verdict::Calling => {
                self.pending = after.pending;
                return Step::Pause;
            }
            Verdict::Wait(wait) => wait,
            Verdict::WaitRefresh => {
                drop(worker);
                let Some(old) = after.refresh_wait else {
                    return Step::Pause;
                };
                return self.wait_for_refresh(host, root, old, end_of_stream);
            }
        };
        let Ok(mut fetcher) = self.fetcher.try_borrow_mut() else {
            return Step::Pause;
        };
        let now = root.now_ms();
        let waiting = KeyFetcher::waiting(wait, &worker, now);
        if fetcher.worth_holding(root, wait.issuer, &waiting, &worker, now) {
            let held = Rc::new(Cell::new(true));
            let id = self.context_id;
            let with = (Rc::clone(&held), Rc::clone(&self.handed));
            fetcher.hold(root, id, wait.issuer, waiting, end_of_stream, with);
            self.held = Some(held);
            return Step::Pause;
        }
        // No fetch can bring the keys soon: decided now with the keys there are.
        let count = |c| counters.count(c);
        let after =
            host::on_request_headers(host, &config, &mut worker, end_of_stream, false, count);
        drop(fetcher);
        self.after_waiting(after)
    }

    /// The step of a request decided without waiting: what it was handed is kept.
    fn after_waiting(&mut self, after: host::AfterHeaders) -> Step {
        match after.verdict {
            Verdict::Continue => {
                self.response_cookies = after.cookies;
                Step::Continue
            }
            Verdict::Calling => {
                self.pending = after.pending;
                Step::Pause
            }
            Verdict::Answered | Verdict::Wait(_) | Verdict::WaitRefresh => Step::Pause,
        }
    }

    /// Holds the request until another request's refresh of its session (`old`: its
    /// cookies) is answered; decided now when it cannot be held.
    fn wait_for_refresh(
        &mut self,
        host: &impl Host,
        root: &impl RootHost,
        old: OldCookies,
        end_of_stream: bool,
    ) -> Step {
        let now = root.now_ms();
        let deadline = now.saturating_add(crate::oidc::provider_call::CALL_TIMEOUT_MS + 1_000);
        let held = Rc::new(Cell::new(true));
        let with = (Rc::clone(&held), Rc::clone(&self.handed));
        let holds = self.fetcher.try_borrow_mut().is_ok_and(|mut fetcher| {
            fetcher.hold_for_refresh(self.context_id, old, (now, deadline), with)
        });
        if holds {
            self.held = Some(held);
            return Step::Pause;
        }
        let (Some(config), Ok(mut worker)) = (self.config.clone(), self.worker.try_borrow_mut())
        else {
            return Step::Pause;
        };
        let counters = Rc::clone(&self.counters);
        let count = |c| counters.count(c);
        let after =
            host::on_request_headers(host, &config, &mut worker, end_of_stream, false, count);
        drop(worker);
        self.after_waiting(after)
    }

    /// A body chunk: the host buffered `size` bytes (`read(start, len)` reads them), the last
    /// when `ends`.
    pub fn on_body(
        &mut self,
        host: &impl Host,
        size: usize,
        ends: bool,
        read: impl FnOnce(usize, usize) -> Vec<u8>,
    ) -> Step {
        let mut read = Some(read);
        let mut read_once =
            |start, len| read.take().map(|read| read(start, len)).unwrap_or_default();
        if let Some(step) = self.read_form(host, size, ends, &mut read_once) {
            return step;
        }
        self.unless_held()
    }

    /// The trailers (`names`): those the configuration removes are removed (`remove`; a
    /// refused removal fails the request closed), and they end a form body whose last chunk
    /// did not say so.
    pub fn on_trailers(
        &mut self,
        host: &impl Host,
        names: &[String],
        remove: impl Fn(&str) -> Result<(), HostError>,
    ) -> Step {
        if let Some(config) = &self.config {
            for name in names {
                if !crate::decision::trailer_is_removed(config, name) {
                    continue;
                }
                if let Err(error) = remove(name) {
                    if let Some(held) = &self.held {
                        held.set(false);
                    }
                    self.form = None;
                    let counters = &self.counters;
                    host::change_refused(host, error, |c| counters.count(c));
                    return Step::Pause;
                }
            }
        }
        if self.read_form(host, 0, true, &mut |_, _| Vec::new()) == Some(Step::Pause) {
            return Step::Pause;
        }
        self.unless_held()
    }

    /// The answer to the call this request made to the OpenID provider (`status`: its
    /// `:status`, none when it did not answer in time; `body`): the request is answered.
    /// An answer to no call of this request is ignored.
    pub fn on_call_answer(&mut self, host: &impl Host, status: Option<&str>, body: &[u8]) {
        // Its own call, or one it started when the worker decided it again after holding it.
        let handed = || self.handed.try_borrow_mut().ok()?.pending.take();
        let pending = self.pending.take().or_else(handed);
        let (Some(pending), Some(config)) = (pending, self.config.clone()) else {
            return;
        };
        let Ok(mut worker) = self.worker.try_borrow_mut() else {
            let _ = host.respond(503, &[("content-type", "text/plain")], b"busy\n");
            return;
        };
        let counters = &self.counters;
        let count = |c| counters.count(c);
        self.response_cookies =
            host::on_call_answer(host, &config, &mut worker, pending, status, body, &count);
    }

    /// What the upstream's response gets (a session refreshed while the request waited: its
    /// new cookies), taken once.
    pub fn take_response_headers(&mut self) -> Vec<ResponseHeader> {
        let mut cookies = std::mem::take(&mut self.response_cookies);
        if let Ok(mut handed) = self.handed.try_borrow_mut() {
            cookies.append(&mut handed.cookies);
        }
        response_headers(cookies)
    }

    /// Whether the request waits for a call to the OpenID provider.
    pub fn is_calling(&self) -> bool {
        self.pending.is_some() || self.handed.try_borrow().is_ok_and(|h| h.pending.is_some())
    }

    fn unless_held(&self) -> Step {
        if self.is_held() || self.is_calling() {
            Step::Pause
        } else {
            Step::Continue
        }
    }

    /// Reads the form body's new bytes. The body waits until its last chunk is read while it
    /// is under [`HOLD_BODY_BYTES`] (no byte of a refused body reaches the upstream); a larger
    /// one goes on chunk by chunk, each read before it goes, and a refusal then resets the
    /// upstream request before its body is whole. `None` when no form is being read.
    fn read_form(
        &mut self,
        host: &impl Host,
        size: usize,
        ends: bool,
        read: &mut dyn FnMut(usize, usize) -> Vec<u8>,
    ) -> Option<Step> {
        let (mut form, config) = (self.form.take()?, self.config.clone()?);
        if self.held.is_some() && !self.is_held() {
            // Let on after a key fetch: what was buffered went on.
            self.held = None;
            (form.read, form.streaming) = (0, true);
        }
        let start = form.read.min(size);
        let chunk = read(start, size - start);
        let counters = Rc::clone(&self.counters);
        let count = |c| counters.count(c);
        if host::on_request_body(host, &config, &mut form.scan, &chunk, ends, count) {
            if let Some(held) = &self.held {
                held.set(false);
            }
            return Some(Step::Pause);
        }
        let step = if self.is_held() || (!ends && !form.streaming && size < HOLD_BODY_BYTES) {
            form.read = size;
            Step::Pause
        } else {
            (form.read, form.streaming) = (0, true);
            Step::Continue
        };
        if !ends {
            self.form = Some(form);
        }
        Some(step)
    }
}

impl Drop for RequestFlow {
    /// A request that goes away while its session's refresh is at the provider never gets
    /// the answer: the requests waiting for that refresh are decided on the next tick.
    fn drop(&mut self) {
        if let Some(Pending::Refresh { old, .. }) = &self.pending {
            if let Ok(mut worker) = self.worker.try_borrow_mut() {
                worker.renewed.forget(old.jar());
            }
        }
    }
}

/// A change the filter makes to the upstream's response headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseHeader {
    /// Appended beside what the upstream sent.
    Add(&'static str, String),
    /// Set over what the upstream sent.
    Set(&'static str, &'static str),
}

/// The response headers for a renewed session's `cookies`: the cookies, and a
/// `Cache-Control` that keeps the response out of shared caches (a cache in front of Envoy
/// that kept a response the upstream marked `public` would hand the session to others).
pub fn response_headers(cookies: Vec<String>) -> Vec<ResponseHeader> {
    if cookies.is_empty() {
        return Vec::new();
    }
    let mut headers: Vec<ResponseHeader> = cookies
        .into_iter()
        .map(|cookie| ResponseHeader::Add("set-cookie", cookie))
        .collect();
    headers.push(ResponseHeader::Set("cache-control", "private, no-store"));
    headers
}

#[cfg(test)]
mod response_tests {
    use super::*;

    #[test]
    fn renewed_cookies_go_out_on_a_response_no_shared_cache_keeps() {
        assert!(response_headers(Vec::new()).is_empty());
        let headers = response_headers(vec!["a=1; HttpOnly".into(), "b=2; HttpOnly".into()]);
        assert_eq!(
            headers,
            [
                ResponseHeader::Add("set-cookie", "a=1; HttpOnly".into()),
                ResponseHeader::Add("set-cookie", "b=2; HttpOnly".into()),
                ResponseHeader::Set("cache-control", "private, no-store"),
            ]
        );
    }
}
