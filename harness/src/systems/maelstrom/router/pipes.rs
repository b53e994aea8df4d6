//! A node's pipes: a writer task that batches queued lines into its stdin,
//! and a reader task that hands each line of its stdout to the router.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::queue::Queue;
use super::{lock, Shared};
use crate::cluster::NodeId;

/// Writes queued lines to a node's stdin, batching what is queued.
pub(super) async fn write_node(
    id: NodeId,
    lines: Arc<Queue<Bytes>>,
    mut stdin: tokio::process::ChildStdin,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = lines.pop().await {
        buf.clear();
        buf.extend_from_slice(&first);
        while buf.len() < 256 * 1024 {
            match lines.try_pop() {
                Some(more) => buf.extend_from_slice(&more),
                None => break,
            }
        }
        if let Err(e) = stdin.write_all(&buf).await {
            tracing::debug!(node = id, error = %e, "node stdin closed");
            lines.close();
            return;
        }
    }
}

/// Reads a node's stdout line by line until it closes.
pub(super) async fn read_node(
    shared: Arc<Shared>,
    id: NodeId,
    generation: u64,
    stdout: tokio::process::ChildStdout,
) {
    let mut r = BufReader::with_capacity(256 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match read_line_capped(&mut r, &mut line, shared.max_line_bytes).await {
            Ok(Some(true)) => shared.route(id, &line),
            Ok(Some(false)) => {
                let name = shared.name(id).to_string();
                shared.malformed(&name, "line too long", &line);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(node = id, error = %e, "reading node stdout failed");
                break;
            }
        }
    }
    tracing::debug!(node = id, "node stdout closed");
    let mut slots = lock(&shared.slots);
    if let Some(slot) = slots.get_mut(&id).filter(|s| s.generation == generation) {
        slot.close();
    }
}

/// Reads one line into `line` (without its newline). `Some(true)`: a line;
/// `Some(false)`: a line longer than `cap`, skipped (what was kept is only
/// its start); `None`: end of file with nothing pending.
async fn read_line_capped(
    r: &mut BufReader<tokio::process::ChildStdout>,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            // A last line without a newline still counts.
            return Ok(any.then_some(!too_long));
        }
        any = true;
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1),
            None => (avail, avail.len()),
        };
        if !too_long {
            if line.len() + chunk.len() > cap {
                too_long = true;
                let room = cap.saturating_sub(line.len()).min(256);
                line.extend_from_slice(&chunk[..room.min(chunk.len())]);
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let found_newline = done > chunk.len();
        r.consume(done);
        if found_newline {
            return Ok(Some(!too_long));
        }
    }
}
