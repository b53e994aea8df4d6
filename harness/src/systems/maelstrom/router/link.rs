//! One directed link: its mode, its message faults and the task that
//! delivers its messages in order under the mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use super::netlog::Action;
use super::queue::Queue;
use super::stats::bump;
use super::Shared;
use crate::cluster::NodeId;
use crate::proxy::LinkMode;
use crate::systems::maelstrom::faults::MessageFaults;

/// One message on its way through a link.
#[derive(Clone)]
pub(super) struct Item {
    /// The line as the node wrote it, newline included.
    pub(super) line: Bytes,
    pub(super) kind: Arc<str>,
    pub(super) enqueued: Instant,
    /// The destination's incarnation when the message was sent: a message
    /// for an earlier incarnation dies with it.
    pub(super) dest_generation: u64,
    /// The term of a leader message (the observer learns who heard it).
    pub(super) leader_term: Option<u64>,
}

pub(super) struct LinkFaults {
    pub(super) faults: MessageFaults,
    pub(super) rng: ChaCha8Rng,
    /// A message held back by `reorder`, with the token of its timer.
    pub(super) held: Option<(Item, u64)>,
    pub(super) next_token: u64,
}

pub(super) struct Link {
    pub(super) mode: watch::Sender<LinkMode>,
    pub(super) faults: Mutex<LinkFaults>,
    pub(super) queue: Arc<Queue<Item>>,
}

impl Link {
    /// A link in `pass` mode without faults, holding at most `cap` messages,
    /// and the receiving end of its mode for its task.
    pub(super) fn new(seed: u64, cap: usize) -> (Link, watch::Receiver<LinkMode>) {
        let (mode, mode_rx) = watch::channel(LinkMode::Pass);
        let queue = Arc::new(Queue::new(cap));
        let link = Link {
            mode,
            faults: Mutex::new(LinkFaults {
                faults: MessageFaults::none(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                held: None,
                next_token: 0,
            }),
            queue,
        };
        (link, mode_rx)
    }
}

/// Delivers one link's messages in order, under its mode.
pub(super) async fn run_link(
    shared: Arc<Shared>,
    from: NodeId,
    to: NodeId,
    queue: Arc<Queue<Item>>,
    mut mode: watch::Receiver<LinkMode>,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Deliveries of a delayed link never overtake each other.
    let mut last_due = Instant::now();
    while let Some(item) = queue.pop().await {
        let mut delayed = false;
        loop {
            let current = *mode.borrow_and_update();
            match current {
                LinkMode::Pass => break shared.deliver(from, to, &item),
                LinkMode::Delay { .. } if delayed => break shared.deliver(from, to, &item),
                LinkMode::Reset => {
                    bump(&shared.counters.cut);
                    shared.log_event(shared.name(from), shared.name(to), &item.kind, Action::Cut);
                    break;
                }
                // Counted when sent into the stall (see `to_node`).
                LinkMode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
                LinkMode::Delay {
                    latency_ms,
                    jitter_ms,
                } => {
                    let jitter = rng.gen_range(0..=jitter_ms);
                    let due =
                        (item.enqueued + Duration::from_millis(latency_ms + jitter)).max(last_due);
                    last_due = due;
                    tokio::time::sleep_until(due).await;
                    delayed = true;
                }
            }
        }
    }
}
