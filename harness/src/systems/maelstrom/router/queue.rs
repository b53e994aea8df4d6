//! A bounded message queue that drops its oldest message when full.
//!
//! Why drop-oldest and not backpressure: one task reads each node's stdout
//! and routes every line it writes, so a full queue that blocked the
//! sender would stall the *sending* node's whole output (its messages to
//! every other node and its replies to clients) because one receiver is
//! paused (SIGSTOP) or one link is stalled. A network that loses messages
//! to a node that does not read them is what Raft is built to survive; the
//! oldest messages are the ones most likely superseded (an older heartbeat,
//! an entry the leader will resend). Every loss is counted and logged.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// One consumer, any number of producers.
pub(super) struct Queue<T> {
    inner: Mutex<Inner<T>>,
    notify: Notify,
    cap: usize,
}

struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// What a push did.
pub(super) enum Pushed<T> {
    /// Queued.
    Queued,
    /// Queued, and the oldest message was dropped to make room.
    Overflow(T),
    /// The queue is closed: the message was not queued.
    Closed(T),
}

impl<T> Queue<T> {
    pub(super) fn new(cap: usize) -> Self {
        Queue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                closed: false,
            }),
            notify: Notify::new(),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn push(&self, item: T) -> Pushed<T> {
        let pushed = {
            let mut q = self.lock();
            if q.closed {
                return Pushed::Closed(item);
            }
            let dropped = (q.items.len() >= self.cap).then(|| q.items.pop_front());
            q.items.push_back(item);
            match dropped.flatten() {
                Some(old) => Pushed::Overflow(old),
                None => Pushed::Queued,
            }
        };
        self.notify.notify_one();
        pushed
    }

    /// The next message without waiting.
    pub(super) fn try_pop(&self) -> Option<T> {
        let mut q = self.lock();
        if q.closed {
            return None;
        }
        q.items.pop_front()
    }

    /// The next message; `None` once the queue is closed (what it still
    /// held is discarded: its receiver is gone).
    pub(super) async fn pop(&self) -> Option<T> {
        loop {
            {
                let mut q = self.lock();
                if q.closed {
                    return None;
                }
                if let Some(item) = q.items.pop_front() {
                    return Some(item);
                }
            }
            // A push between the check and here leaves a permit: no lost wakeup.
            self.notify.notified().await;
        }
    }

    pub(super) fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.items.clear();
        drop(q);
        self.notify.notify_one();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_and_a_closed_one_takes_nothing() {
        let q = Queue::new(3);
        for i in 0..3 {
            assert!(matches!(q.push(i), Pushed::Queued));
        }
        assert!(matches!(q.push(3), Pushed::Overflow(0)));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().await, Some(1));
        assert_eq!(q.try_pop(), Some(2));
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.pop().await, None);
        assert!(matches!(q.push(9), Pushed::Closed(9)));
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_push() {
        let q = std::sync::Arc::new(Queue::new(8));
        let c = q.clone();
        let waiter = tokio::spawn(async move { c.pop().await });
        tokio::task::yield_now().await;
        q.push(7);
        assert_eq!(waiter.await.unwrap(), Some(7));
    }
}
