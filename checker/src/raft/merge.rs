//! The k-way merge of the inputs by time.
//!
//! Each input is read and parsed on its own thread, a batch of events at a
//! time through a channel of two batches, so parsing (the bulk of the work)
//! spreads over the cores while the check consumes one merged sequence. The
//! merge holds one head event per input and a heap of their times: memory is
//! a few batches per input, whatever the input's length.
//!
//! Ties in time go to the lower `tiebreak`. A stream whose time goes back
//! (a wall-clock step on its node) is still taken in its own order: the
//! merge stays an interleaving of the inputs, each in the order its writer
//! wrote it, only no longer sorted by time across them. A warning names the
//! input.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{sync_channel, Receiver};

use super::{Event, Stamped, Stream};
use crate::CheckError;

/// Events parsed per message between a reader thread and the merge.
const BATCH: usize = 1024;

type Batch = Vec<Result<Stamped, CheckError>>;

/// One input as the merge sees it.
struct Cursor {
    name: String,
    rx: Receiver<Batch>,
    batch: std::vec::IntoIter<Result<Stamped, CheckError>>,
    last_time: u64,
    count: u64,
    warned: bool,
}

impl Cursor {
    fn next(&mut self) -> Option<Result<Stamped, CheckError>> {
        loop {
            if let Some(x) = self.batch.next() {
                if let Ok(s) = &x {
                    self.count += 1;
                    let t = s.event.time();
                    if t < self.last_time && !self.warned {
                        self.warned = true;
                        tracing::warn!(
                            input = %self.name,
                            from = self.last_time,
                            to = t,
                            "time goes back within one input (a clock step?): its events are \
                             merged in the order it has them"
                        );
                    }
                    self.last_time = t;
                }
                return Some(x);
            }
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// Feeds the merged events of `streams` to `visit`, in order; `limits`
/// (from an earlier pass) stops each stream after as many events as that
/// pass saw, so every pass reads the same events even of a file that grew.
/// Returns the number of events taken from each stream.
pub(super) fn run(
    streams: Vec<Stream<'_>>,
    limits: Option<&[u64]>,
    mut visit: impl FnMut(&Event),
) -> Result<Vec<u64>, CheckError> {
    std::thread::scope(|scope| {
        let mut cursors = Vec::with_capacity(streams.len());
        for (k, stream) in streams.into_iter().enumerate() {
            let limit = limits.map_or(u64::MAX, |l| l.get(k).copied().unwrap_or(0));
            let (tx, rx) = sync_channel::<Batch>(2);
            let mut events = stream
                .events
                .take(usize::try_from(limit).unwrap_or(usize::MAX));
            scope.spawn(move || loop {
                let batch: Batch = events.by_ref().take(BATCH).collect();
                let last = batch.len() < BATCH || batch.iter().any(Result::is_err);
                if batch.is_empty() || tx.send(batch).is_err() || last {
                    return;
                }
            });
            cursors.push(Cursor {
                name: stream.name,
                rx,
                batch: Vec::new().into_iter(),
                last_time: 0,
                count: 0,
                warned: false,
            });
        }
        // Returning early drops the cursors, so every reader's next send
        // fails and its thread ends before the scope joins it.
        merge(&mut cursors, &mut visit)?;
        Ok(cursors.iter().map(|c| c.count).collect())
    })
}

fn merge(cursors: &mut [Cursor], visit: &mut impl FnMut(&Event)) -> Result<(), CheckError> {
    let mut heads: Vec<Option<Event>> = Vec::with_capacity(cursors.len());
    let mut heap = BinaryHeap::with_capacity(cursors.len());
    for (k, c) in cursors.iter_mut().enumerate() {
        heads.push(None);
        if let Some(s) = c.next().transpose()? {
            heap.push(Reverse((s.event.time(), s.tiebreak, k)));
            heads[k] = Some(s.event);
        }
    }
    while let Some(Reverse((_, _, k))) = heap.pop() {
        let event = heads[k].take().expect("a head for every heap entry");
        visit(&event);
        if let Some(s) = cursors[k].next().transpose()? {
            heap.push(Reverse((s.event.time(), s.tiebreak, k)));
            heads[k] = Some(s.event);
        }
    }
    Ok(())
}
