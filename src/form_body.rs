//! The request body of a [`Stream`] whose form is read for credential fields: what is held,
//! what goes on, and when the request is answered instead.

use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action as HostAction;
use tollgate_core::host::{self, BodyScan, HOLD_BODY_BYTES};

use super::{CurrentRequest, Stream};

/// A form body being read, and how much of what Envoy buffers was read already.
pub(super) struct FormBody {
    pub(super) scan: BodyScan,
    /// Bytes of the buffered body already read.
    pub(super) read: usize,
    /// Past [`HOLD_BODY_BYTES`] (or released after a key fetch): each chunk goes on once
    /// read.
    pub(super) streaming: bool,
}

impl Stream {
    /// Reads the form body's new bytes. The body waits until its last chunk is read while it
    /// is under [`HOLD_BODY_BYTES`] (no byte of a refused body reaches the upstream); a larger
    /// one goes on chunk by chunk, each read before it goes, and a refusal then resets the
    /// upstream request before its body is whole. `None` when no form is being read.
    pub(super) fn read_form(&mut self, size: usize, ends: bool) -> Option<HostAction> {
        let (mut form, config) = (self.form.take()?, self.config.clone()?);
        if self.held.is_some() && !self.is_held() {
            // Let on after a key fetch: what was buffered went on.
            self.held = None;
            (form.read, form.streaming) = (0, true);
        }
        let start = form.read.min(size);
        let chunk = self
            .get_http_request_body(start, size - start)
            .unwrap_or_default();
        let count = |c| self.metrics.count(c);
        let worker = std::rc::Rc::clone(&self.worker);
        // The VM runs one request callback at a time: the state is never borrowed here.
        let Ok(mut worker) = worker.try_borrow_mut() else {
            return Some(HostAction::Pause);
        };
        if host::on_request_body(
            &CurrentRequest,
            &config,
            &mut worker,
            &mut form.scan,
            &chunk,
            ends,
            count,
        ) {
            if let Some(held) = &self.held {
                held.set(false);
            }
            return Some(HostAction::Pause);
        }
        let action = if self.is_held() || (!ends && !form.streaming && size < HOLD_BODY_BYTES) {
            form.read = size;
            HostAction::Pause
        } else {
            (form.read, form.streaming) = (0, true);
            HostAction::Continue
        };
        if !ends {
            self.form = Some(form);
        }
        Some(action)
    }
}
