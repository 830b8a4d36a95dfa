//! Response bodies: a full buffer, or an SSE stream fed from a channel.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::queue;
use crate::session::{Out, Session};
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

pub enum ResBody {
    Full(Option<Bytes>),
    Sse(SseBody),
}

pub struct SseBody {
    pending: std::collections::VecDeque<Bytes>,
    /// Bounded: hyper only polls for the next frame once the client took the previous ones, so
    /// a client that stops reading fills this queue and is dropped by the session.
    rx: queue::Receiver<Out>,
    /// Session to close when the client goes away (legacy HTTP+SSE streams).
    close_on_drop: Option<Arc<Session>>,
}

impl SseBody {
    pub fn new(first: Vec<Bytes>, rx: queue::Receiver<Out>, close_on_drop: Option<Arc<Session>>) -> SseBody {
        SseBody { pending: first.into(), rx, close_on_drop }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        if let Some(s) = self.close_on_drop.take() {
            s.close("the SSE client disconnected");
        }
    }
}

impl ResBody {
    pub fn full(b: impl Into<Bytes>) -> ResBody {
        ResBody::Full(Some(b.into()))
    }
    pub fn empty() -> ResBody {
        ResBody::Full(None)
    }
}

impl Body for ResBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResBody::Sse(s) => {
                if let Some(b) = s.pending.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                match s.rx.poll_recv(cx) {
                    Poll::Ready(Some(Out::Event(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                    Poll::Ready(Some(Out::Json(b))) => {
                        Poll::Ready(Some(Ok(Frame::data(crate::session::legacy_frame(&b)))))
                    }
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResBody::Full(b) => b.is_none(),
            ResBody::Sse(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResBody::Full(None) => SizeHint::with_exact(0),
            ResBody::Sse(_) => SizeHint::default(),
        }
    }
}
