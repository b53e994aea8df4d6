//! Maelstrom-protocol nodes as supervised processes behind one [`Router`]:
//! a start is a piped start of the supervisor followed by the router's
//! `init`; a kill also tells the router the pipes are gone. Every guarantee
//! of the [`Supervisor`] holds (own process group, parent-death signal,
//! reaped, no orphans): dropping the host kills every node.

use std::sync::Arc;
use std::time::Duration;

use super::router::{Router, RouterError};
use crate::cluster::{ClusterError, NodeId, ProcessSpec, ProcessState, Supervisor};

/// Errors of the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Router(#[from] RouterError),
}

/// The processes and their network.
pub struct Host {
    sup: Arc<Supervisor>,
    router: Arc<Router>,
}

impl Host {
    pub fn new(router: Arc<Router>) -> Self {
        Host {
            sup: Arc::new(Supervisor::new()),
            router,
        }
    }

    /// What node `id` runs (at its next start).
    pub fn register(&self, id: NodeId, spec: ProcessSpec) {
        self.sup.register(id, spec);
    }

    /// Starts node `id` and initializes it; a node that does not answer
    /// `init` is killed again and the start is an error.
    pub async fn start(&self, id: NodeId) -> Result<(), HostError> {
        let pipes = self.sup.start_piped(id)?;
        if let Err(e) = self.router.attach(id, pipes.stdin, pipes.stdout).await {
            self.kill(id)?;
            return Err(e.into());
        }
        Ok(())
    }

    /// Starts every registered node, one after the other.
    pub async fn start_all(&self) -> Result<(), HostError> {
        for id in self.sup.ids() {
            self.start(id).await?;
        }
        Ok(())
    }

    /// `kill -9` of node `id`'s process group; messages to it are lost until
    /// it starts again.
    pub fn kill(&self, id: NodeId) -> Result<(), ClusterError> {
        self.router.detach(id);
        self.sup.kill(id)
    }

    /// Kill, then start again (on the same data, if the node keeps any).
    pub async fn restart(&self, id: NodeId) -> Result<(), HostError> {
        self.kill(id)?;
        self.start(id).await
    }

    pub fn pause(&self, id: NodeId) -> Result<(), ClusterError> {
        self.sup.pause(id)
    }

    pub fn resume(&self, id: NodeId) -> Result<(), ClusterError> {
        self.sup.resume(id)
    }

    pub fn state(&self, id: NodeId) -> Option<ProcessState> {
        self.sup.state(id)
    }

    /// Graceful stop of every node (SIGTERM, then SIGKILL after `grace`).
    /// Blocks: call it from `spawn_blocking` in async code.
    pub fn shutdown(&self, grace: Duration) {
        for id in self.sup.ids() {
            self.router.detach(id);
        }
        self.sup.shutdown(grace);
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.sup
    }
}
