//! Bounded queues towards peers that may stop reading: an HTTP client's SSE stream or response,
//! and a child's stdin.
//!
//! A peer that does not read must not make the bridge's memory grow. Each queue counts the
//! messages and bytes it holds; a send that would exceed either limit fails with
//! [`SendError::Full`] instead of waiting, because the sender is the single task reading a child's
//! stdout (or an HTTP handler) and must never block on one slow peer. The caller then drops the
//! session (or the stateless request) whose peer stopped reading.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes a queued item holds, for the byte budget.
pub trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for Bytes {
    fn weight(&self) -> usize {
        // +1: the newline added when the message is written to the child.
        self.len() + 1
    }
}

/// Per-queue limits (`--max-buffered-bytes`, `--max-buffered-messages`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bytes: usize,
    pub messages: usize,
}

#[derive(Default)]
struct Used {
    bytes: usize,
    messages: usize,
}

struct Budget {
    limits: Limits,
    used: Mutex<Used>,
}

impl Budget {
    fn used(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The peer is not reading: the queue holds its limit of messages or bytes.
    Full,
    /// The receiving side is gone (client disconnected, child's writer ended).
    Closed,
}

pub struct Sender<T> {
    tx: mpsc::UnboundedSender<T>,
    budget: Arc<Budget>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender { tx: self.tx.clone(), budget: Arc::clone(&self.budget) }
    }
}

pub struct Receiver<T> {
    rx: mpsc::UnboundedReceiver<T>,
    budget: Arc<Budget>,
}

pub fn channel<T: Weight>(limits: Limits) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Arc::new(Budget { limits, used: Mutex::new(Used::default()) });
    (Sender { tx, budget: Arc::clone(&budget) }, Receiver { rx, budget })
}

impl<T: Weight> Sender<T> {
    /// Queue `item` without waiting. An empty queue always takes one item, however large: its
    /// size is already capped by `--max-message-bytes`, and refusing it would make a message
    /// larger than the byte limit undeliverable even to a client that reads.
    pub fn send(&self, item: T) -> Result<(), SendError> {
        if self.tx.is_closed() {
            return Err(SendError::Closed);
        }
        let w = item.weight();
        {
            let mut used = self.budget.used();
            let limits = self.budget.limits;
            let fits = used.messages == 0
                || (used.messages < limits.messages && used.bytes.saturating_add(w) <= limits.bytes);
            if !fits {
                return Err(SendError::Full);
            }
            used.messages += 1;
            used.bytes = used.bytes.saturating_add(w);
        }
        if self.tx.send(item).is_err() {
            self.release(w);
            return Err(SendError::Closed);
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// What the queue holds now: (messages, bytes). For logs.
    pub fn usage(&self) -> (usize, usize) {
        let used = self.budget.used();
        (used.messages, used.bytes)
    }

    fn release(&self, w: usize) {
        release(&self.budget, w);
    }
}

fn release(budget: &Budget, w: usize) {
    let mut used = budget.used();
    used.messages = used.messages.saturating_sub(1);
    used.bytes = used.bytes.saturating_sub(w);
}

impl<T: Weight> Receiver<T> {
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                release(&self.budget, item.weight());
                Poll::Ready(Some(item))
            }
            other => other,
        }
    }

    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Take a queued item if there is one, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        let item = self.rx.try_recv().ok()?;
        release(&self.budget, item.weight());
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn message_and_byte_limits_then_room_after_reading() {
        let (tx, mut rx) = channel::<Bytes>(Limits { bytes: 100, messages: 3 });
        assert_eq!(tx.send(b(9)), Ok(()));
        assert_eq!(tx.send(b(9)), Ok(()));
        assert_eq!(tx.send(b(9)), Ok(()));
        assert_eq!(tx.send(b(0)), Err(SendError::Full), "message limit");
        assert_eq!(tx.usage(), (3, 30));
        assert_eq!(rx.recv().await.map(|m| m.len()), Some(9));
        assert_eq!(tx.send(b(80)), Err(SendError::Full), "byte limit: 20 + 81 > 100");
        assert_eq!(tx.send(b(79)), Ok(()));
        assert_eq!(tx.usage(), (3, 100));
    }

    #[tokio::test]
    async fn an_empty_queue_takes_one_oversized_message() {
        let (tx, mut rx) = channel::<Bytes>(Limits { bytes: 10, messages: 10 });
        assert_eq!(tx.send(b(1000)), Ok(()));
        assert_eq!(tx.send(b(1)), Err(SendError::Full));
        assert!(rx.try_recv().is_some());
        assert_eq!(tx.usage(), (0, 0));
        assert_eq!(tx.send(b(1)), Ok(()));
    }

    #[test]
    fn closed_receiver_is_not_full() {
        let (tx, rx) = channel::<Bytes>(Limits { bytes: 10, messages: 1 });
        drop(rx);
        assert_eq!(tx.send(b(1)), Err(SendError::Closed));
        assert!(tx.is_closed());
    }
}
