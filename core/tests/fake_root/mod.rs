//! A fake worker root context ([`RootHost`]) for the lifecycle's native tests: shared data
//! with compare-and-swap (one [`Process`] shared by the workers of a test), outbound calls
//! recorded and answered by the test, metrics, logs, a clock, and held requests
//! ([`FakeRequest`]) that record what was done to them.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use tollgate_core::host::{Host, HostError};
use tollgate_core::lifecycle::{HeldRequest, Level, MetricKind, RootHost};

/// The shared data of one Envoy process: value and compare-and-swap token by key.
#[derive(Default)]
pub struct Process {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
    /// Writes with a compare-and-swap token that are refused whatever it is (another
    /// worker wrote in between).
    pub lose_next_cas: Cell<usize>,
}

impl Process {
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.data.borrow().get(key).map(|(v, _)| v.clone())
    }
}

/// A GET the filter sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: u32,
    pub cluster: String,
    pub path: String,
}

/// The answer being handled: its headers and body.
#[derive(Default)]
pub struct Answer {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// One request's fake host: its headers, and what the filter did to it.
pub struct RequestState {
    pub headers: Vec<(String, Vec<u8>)>,
    pub set: RefCell<Vec<(String, Vec<u8>)>>,
    pub answered: RefCell<Option<(u32, String)>>,
    /// The headers of the answer, when answered.
    pub answer_headers: RefCell<Vec<(String, String)>>,
    pub resumed: Cell<bool>,
    /// Calls to the OpenID provider it sent.
    pub calls: Cell<u32>,
}

#[derive(Clone)]
pub struct FakeRequest {
    pub state: Rc<RequestState>,
    clock: Rc<Cell<u64>>,
}

impl FakeRequest {
    pub fn answer(&self) -> Option<(u32, String)> {
        self.state.answered.borrow().clone()
    }
    pub fn header_set(&self, name: &str) -> Option<String> {
        self.state
            .set
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

impl Host for FakeRequest {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.state.headers.clone()
    }
    fn now(&self) -> u64 {
        self.clock.get() / 1000
    }
    fn remove_header(&self, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn set_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        let edit = (name.to_owned(), value.to_vec());
        self.state.set.borrow_mut().push(edit);
        Ok(())
    }
    fn add_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.set_header(name, value)
    }
    fn set_property(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn respond(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        let body = String::from_utf8_lossy(body).into_owned();
        *self.state.answer_headers.borrow_mut() = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        *self.state.answered.borrow_mut() = Some((status, body));
        Ok(())
    }
    fn debug_enabled(&self) -> bool {
        false
    }
    fn debug(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn http_call(&self, _: &str, _: &[(&str, &str)], _: &[u8], _: u64) -> Result<u32, HostError> {
        self.state.calls.set(self.state.calls.get() + 1);
        Ok(self.state.calls.get())
    }
    fn continue_request(&self) -> Result<(), HostError> {
        self.state.resumed.set(true);
        Ok(())
    }
}

impl HeldRequest for FakeRequest {
    fn resume(&self) -> Result<(), HostError> {
        self.state.resumed.set(true);
        Ok(())
    }
}

/// One worker's root context.
pub struct FakeRoot {
    pub process: Rc<Process>,
    /// Unix milliseconds.
    pub clock: Rc<Cell<u64>>,
    pub sent: RefCell<Vec<Sent>>,
    next_id: Cell<u32>,
    /// `http_get` is refused.
    pub refuse_calls: Cell<bool>,
    /// A worker that does not fetch (a native Envoy's): see [`RootHost::fetches`].
    pub follower: Cell<bool>,
    pub answer: RefCell<Answer>,
    metrics: RefCell<Vec<(String, MetricKind, i64)>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    requests: RefCell<HashMap<u32, FakeRequest>>,
}

impl FakeRoot {
    pub fn new(process: &Rc<Process>, now_ms: u64) -> FakeRoot {
        FakeRoot {
            process: Rc::clone(process),
            clock: Rc::new(Cell::new(now_ms)),
            sent: RefCell::default(),
            next_id: Cell::new(1),
            refuse_calls: Cell::new(false),
            follower: Cell::new(false),
            answer: RefCell::default(),
            metrics: RefCell::default(),
            logs: RefCell::default(),
            requests: RefCell::default(),
        }
    }

    pub fn advance(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }

    /// A request with `headers` (pseudo-headers first), known as `context_id`.
    pub fn request(&self, context_id: u32, headers: &[(&str, &str)]) -> FakeRequest {
        let request = FakeRequest {
            state: Rc::new(RequestState {
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                    .collect(),
                set: RefCell::default(),
                answered: RefCell::default(),
                answer_headers: RefCell::default(),
                resumed: Cell::new(false),
                calls: Cell::new(0),
            }),
            clock: Rc::clone(&self.clock),
        };
        self.requests
            .borrow_mut()
            .insert(context_id, request.clone());
        request
    }

    /// Sets the answer being handled: `status` (none: no headers), whether it came from the
    /// upstream, and its body.
    pub fn set_answer(&self, status: Option<&[u8]>, upstream: bool, body: &[u8]) {
        let mut headers = Vec::new();
        if let Some(status) = status {
            headers.push((":status".to_owned(), status.to_vec()));
        }
        if upstream {
            headers.push(("x-envoy-upstream-service-time".to_owned(), b"3".to_vec()));
        }
        *self.answer.borrow_mut() = Answer {
            headers,
            body: body.to_vec(),
        };
    }

    /// The value of metric `name` (counters summed, gauges set).
    pub fn metric(&self, name: &str) -> i64 {
        self.metrics
            .borrow()
            .iter()
            .find(|(n, _, _)| n == name)
            .map_or(0, |(_, _, v)| *v)
    }

    pub fn logged(&self, level: Level, part: &str) -> usize {
        self.logs
            .borrow()
            .iter()
            .filter(|(l, line)| *l == level && line.contains(part))
            .count()
    }

    pub fn last_sent(&self) -> Sent {
        self.sent.borrow().last().cloned().unwrap()
    }
}

impl RootHost for FakeRoot {
    type Request = FakeRequest;

    fn http_get(&self, cluster: &str, headers: &[(&str, &str)], _: u64) -> Result<u32, HostError> {
        if self.refuse_calls.get() {
            return Err(HostError("BadArgument"));
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let path = headers
            .iter()
            .find(|(n, _)| *n == ":path")
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_default();
        let cluster = cluster.to_owned();
        self.sent.borrow_mut().push(Sent { id, cluster, path });
        Ok(id)
    }

    fn answer_header(&self, name: &str) -> Option<Vec<u8>> {
        let answer = self.answer.borrow();
        answer
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn answer_body(&self, max: usize) -> Option<Vec<u8>> {
        let answer = self.answer.borrow();
        Some(answer.body.iter().take(max).copied().collect())
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostError> {
        Ok(match self.process.data.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        let process = &self.process;
        let mut data = process.data.borrow_mut();
        if let Some(cas) = cas {
            let lose = process.lose_next_cas.get();
            if lose > 0 {
                process.lose_next_cas.set(lose - 1);
                return Err(HostError("CasMismatch"));
            }
            if data.get(key).is_some_and(|(_, now)| *now != cas) {
                return Err(HostError("CasMismatch"));
            }
        }
        let next = process.next_cas.get() + 1;
        process.next_cas.set(next);
        data.insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        let mut metrics = self.metrics.borrow_mut();
        metrics.push((name.to_owned(), kind, 0));
        Ok(u32::try_from(metrics.len() - 1).unwrap())
    }

    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError> {
        self.metrics.borrow_mut()[id as usize].2 += by;
        Ok(())
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        self.metrics.borrow_mut()[id as usize].2 = i64::try_from(value).unwrap();
        Ok(())
    }

    fn held_request(&self, context_id: u32) -> Option<FakeRequest> {
        self.requests.borrow().get(&context_id).cloned()
    }

    fn fetches(&self) -> bool {
        !self.follower.get()
    }

    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn log(&self, level: Level, line: &str) {
        self.logs.borrow_mut().push((level, line.to_owned()));
    }
}
