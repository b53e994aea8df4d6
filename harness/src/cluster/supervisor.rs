//! Process supervisor: start, `kill -9`, pause, resume and stop OS processes,
//! and never leave one behind.
//!
//! Every process is started
//! - in its own process group (so a Ctrl-C on the terminal reaches only the
//!   harness, which then shuts the nodes down in order, and so that signals
//!   reach anything the node itself spawned: we always signal the group);
//! - with `PR_SET_PDEATHSIG(SIGKILL)`, so the kernel kills it if the harness
//!   dies, even by SIGKILL. That signal fires when the *thread* that forked
//!   the child exits, so all children are forked from one dedicated spawner
//!   thread that lives exactly as long as the [`Supervisor`];
//! - with stdout and stderr appended to its log file (one file across
//!   restarts, a header line before each start); or, started with
//!   [`Supervisor::start_piped`], with stdin and stdout as pipes handed to
//!   the caller (a Maelstrom node speaks its protocol over them) and only
//!   stderr appended to the log.
//!
//! Dropping the supervisor SIGKILLs and reaps every process it started;
//! [`Supervisor::shutdown`] is the polite version (SIGCONT, SIGTERM, wait,
//! SIGKILL). The methods block for at most a few milliseconds, except
//! [`Supervisor::terminate`] and [`Supervisor::shutdown`], which wait up to
//! the grace period given (call those from `spawn_blocking` in async code).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use super::{ClusterError, NodeId};

/// What to run for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// stdout and stderr are appended here; parent folders are created.
    pub log_path: PathBuf,
    /// Extra environment variables (the rest is inherited).
    pub env: Vec<(OsString, OsString)>,
}

/// The state of a supervised process as the supervisor last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    Running,
    /// Stopped with SIGSTOP by [`Supervisor::pause`].
    Paused,
    /// Not running: never started, killed, stopped or exited on its own.
    Stopped,
}

struct Proc {
    spec: ProcessSpec,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    last_exit: Option<ExitStatus>,
}

/// The process of [`Supervisor::start_piped`]: its stdin and stdout belong
/// to the caller. They are close-on-exec, so no other child inherits them:
/// when the process dies, its stdout reaches end-of-file at once.
#[derive(Debug)]
pub struct Pipes {
    pub pid: u32,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Owns the node processes. See the module docs for the guarantees.
pub struct Supervisor {
    procs: Mutex<BTreeMap<NodeId, Proc>>,
    spawner: Mutex<Option<mpsc::Sender<SpawnRequest>>>,
    spawner_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// Creates a supervisor and its spawner thread.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the supervisor's spawner thread");
        Supervisor {
            procs: Mutex::new(BTreeMap::new()),
            spawner: Mutex::new(Some(tx)),
            spawner_thread: Mutex::new(Some(thread)),
        }
    }

    /// Registers (or replaces) what node `id` runs; takes effect at its next start.
    pub fn register(&self, id: NodeId, spec: ProcessSpec) {
        let mut procs = self.lock();
        match procs.get_mut(&id) {
            Some(p) => p.spec = spec,
            None => {
                procs.insert(
                    id,
                    Proc {
                        spec,
                        child: None,
                        paused: false,
                        starts: 0,
                        last_exit: None,
                    },
                );
            }
        }
    }

    /// The spec node `id` runs (or would run at its next start).
    pub fn spec(&self, id: NodeId) -> Option<ProcessSpec> {
        self.lock().get(&id).map(|p| p.spec.clone())
    }

    /// Every registered node.
    pub fn ids(&self) -> Vec<NodeId> {
        self.lock().keys().copied().collect()
    }

    /// The current state; reaps the process if it exited on its own.
    pub fn state(&self, id: NodeId) -> Option<ProcessState> {
        let mut procs = self.lock();
        let p = procs.get_mut(&id)?;
        Some(reap_state(id, p))
    }

    /// The OS pid (= process group id) of a running or paused node.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        let mut procs = self.lock();
        let p = procs.get_mut(&id)?;
        match reap_state(id, p) {
            ProcessState::Stopped => None,
            _ => p.child.as_ref().map(|c| c.id()),
        }
    }

    /// How often node `id` has been started.
    pub fn starts(&self, id: NodeId) -> u32 {
        self.lock().get(&id).map_or(0, |p| p.starts)
    }

    /// The exit status of the last process of node `id` that was reaped.
    pub fn last_exit(&self, id: NodeId) -> Option<ExitStatus> {
        self.lock().get(&id).and_then(|p| p.last_exit)
    }

    /// Starts node `id`; it must be stopped. Returns the pid.
    pub fn start(&self, id: NodeId) -> Result<u32, ClusterError> {
        self.start_with(id, false).map(|(pid, _)| pid)
    }

    /// Starts node `id` (it must be stopped) with its stdin and stdout as
    /// pipes that the caller now owns; stderr goes to the log. Every other
    /// guarantee is the same as [`Supervisor::start`]; a restart is another
    /// `start_piped` and gives new pipes.
    pub fn start_piped(&self, id: NodeId) -> Result<Pipes, ClusterError> {
        let (pid, pipes) = self.start_with(id, true)?;
        let (stdin, stdout) = pipes.expect("a piped start returns its pipes");
        Ok(Pipes { pid, stdin, stdout })
    }

    fn start_with(
        &self,
        id: NodeId,
        piped: bool,
    ) -> Result<(u32, Option<(ChildStdin, ChildStdout)>), ClusterError> {
        let mut procs = self.lock();
        let p = procs.get_mut(&id).ok_or(ClusterError::UnknownNode(id))?;
        let state = reap_state(id, p);
        if state != ProcessState::Stopped {
            return Err(ClusterError::BadState {
                id,
                state,
                action: "start",
            });
        }
        let log = open_log(&p.spec, id, p.starts + 1)?;
        let mut cmd = Command::new(&p.spec.program);
        cmd.args(&p.spec.args)
            .envs(p.spec.env.iter().map(|(k, v)| (k, v)))
            .process_group(0);
        if piped {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(log);
        } else {
            let log_err = log.try_clone().map_err(|e| io_err(&p.spec.log_path, e))?;
            cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        }
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (prctl, getppid); it allocates
        // nothing and touches no locks.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The harness died between fork and prctl: do not outlive it.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("harness exited during spawn"));
                }
                Ok(())
            });
        }
        let mut child = self.spawn(cmd).map_err(|source| ClusterError::Spawn {
            id,
            program: p.spec.program.display().to_string(),
            source,
        })?;
        let pid = child.id();
        let pipes = child.stdin.take().zip(child.stdout.take());
        tracing::debug!(node = id, pid, piped, "started");
        p.child = Some(child);
        p.paused = false;
        p.starts += 1;
        Ok((pid, pipes))
    }

    /// SIGKILL to the node's process group, then reap. Killing a node that is
    /// already down is not an error (it is down, as asked).
    pub fn kill(&self, id: NodeId) -> Result<(), ClusterError> {
        let mut procs = self.lock();
        let p = procs.get_mut(&id).ok_or(ClusterError::UnknownNode(id))?;
        kill_and_reap(id, p);
        Ok(())
    }

    /// SIGSTOP to the node's process group.
    pub fn pause(&self, id: NodeId) -> Result<(), ClusterError> {
        let mut procs = self.lock();
        let p = procs.get_mut(&id).ok_or(ClusterError::UnknownNode(id))?;
        match reap_state(id, p) {
            ProcessState::Running => {
                signal_group(id, p, Signal::SIGSTOP, "SIGSTOP")?;
                p.paused = true;
                Ok(())
            }
            ProcessState::Paused => Ok(()),
            state => Err(ClusterError::BadState {
                id,
                state,
                action: "pause",
            }),
        }
    }

    /// SIGCONT to the node's process group.
    pub fn resume(&self, id: NodeId) -> Result<(), ClusterError> {
        let mut procs = self.lock();
        let p = procs.get_mut(&id).ok_or(ClusterError::UnknownNode(id))?;
        match reap_state(id, p) {
            ProcessState::Paused | ProcessState::Running => {
                signal_group(id, p, Signal::SIGCONT, "SIGCONT")?;
                p.paused = false;
                Ok(())
            }
            state => Err(ClusterError::BadState {
                id,
                state,
                action: "resume",
            }),
        }
    }

    /// Graceful stop of one node: SIGCONT (a stopped process cannot handle
    /// SIGTERM), SIGTERM, wait up to `grace`, then SIGKILL. Blocks.
    pub fn terminate(&self, id: NodeId, grace: Duration) -> Result<(), ClusterError> {
        if !self.lock().contains_key(&id) {
            return Err(ClusterError::UnknownNode(id));
        }
        self.terminate_many(&[id], grace);
        Ok(())
    }

    /// Graceful stop of every node at once (see [`Supervisor::terminate`]). Blocks.
    pub fn shutdown(&self, grace: Duration) {
        let ids = self.ids();
        self.terminate_many(&ids, grace);
    }

    fn terminate_many(&self, ids: &[NodeId], grace: Duration) {
        {
            let mut procs = self.lock();
            for id in ids {
                if let Some(p) = procs.get_mut(id) {
                    if reap_state(*id, p) != ProcessState::Stopped {
                        let _ = signal_group(*id, p, Signal::SIGCONT, "SIGCONT");
                        p.paused = false;
                        let _ = signal_group(*id, p, Signal::SIGTERM, "SIGTERM");
                    }
                }
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            let all_down = {
                let mut procs = self.lock();
                ids.iter().all(|id| {
                    procs
                        .get_mut(id)
                        .is_none_or(|p| reap_state(*id, p) == ProcessState::Stopped)
                })
            };
            if all_down || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut procs = self.lock();
        for id in ids {
            if let Some(p) = procs.get_mut(id) {
                if p.child.is_some() {
                    tracing::warn!(node = id, "did not exit after SIGTERM; sending SIGKILL");
                }
                kill_and_reap(*id, p);
            }
        }
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (tx, rx) = mpsc::channel();
        let sent = self
            .spawner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.send((cmd, tx)).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(std::io::Error::other("supervisor spawner thread is gone"));
        }
        rx.recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("supervisor spawner thread is gone")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Proc>> {
        // A panic while holding the lock must not stop cleanup on drop.
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let mut procs = self.lock();
        for (id, p) in procs.iter_mut() {
            kill_and_reap(*id, p);
        }
        drop(procs);
        self.spawner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = self
            .spawner_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }
}

fn reap_state(id: NodeId, p: &mut Proc) -> ProcessState {
    let Some(child) = p.child.as_mut() else {
        return ProcessState::Stopped;
    };
    match child.try_wait() {
        Ok(Some(status)) => {
            tracing::info!(node = id, %status, "process exited");
            // Anything the node left in its group goes with it.
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            p.last_exit = Some(status);
            p.child = None;
            p.paused = false;
            ProcessState::Stopped
        }
        Ok(None) if p.paused => ProcessState::Paused,
        Ok(None) => ProcessState::Running,
        Err(e) => {
            tracing::warn!(node = id, error = %e, "try_wait failed");
            ProcessState::Running
        }
    }
}

fn kill_and_reap(id: NodeId, p: &mut Proc) {
    if let Some(mut child) = p.child.take() {
        let pgid = Pid::from_raw(child.id() as i32);
        // ESRCH only means the group is already gone.
        let _ = killpg(pgid, Signal::SIGKILL);
        match child.wait() {
            Ok(status) => p.last_exit = Some(status),
            Err(e) => tracing::warn!(node = id, error = %e, "wait after SIGKILL failed"),
        }
        tracing::debug!(node = id, "killed");
    }
    p.paused = false;
}

fn signal_group(id: NodeId, p: &Proc, sig: Signal, name: &'static str) -> Result<(), ClusterError> {
    let Some(child) = p.child.as_ref() else {
        return Ok(());
    };
    killpg(Pid::from_raw(child.id() as i32), sig).map_err(|source| ClusterError::Signal {
        id,
        signal: name,
        source,
    })
}

fn open_log(spec: &ProcessSpec, id: NodeId, start_no: u32) -> Result<std::fs::File, ClusterError> {
    if let Some(dir) = spec.log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(|e| io_err(&spec.log_path, e))?;
    let argv: Vec<String> = std::iter::once(spec.program.display().to_string())
        .chain(spec.args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    writeln!(
        f,
        "=== harness: start #{start_no} of node {id} at {}: {}",
        chrono::Utc::now().to_rfc3339(),
        argv.join(" ")
    )
    .map_err(|e| io_err(&spec.log_path, e))?;
    Ok(f)
}

fn io_err(path: &std::path::Path, source: std::io::Error) -> ClusterError {
    ClusterError::Io {
        path: path.display().to_string(),
        source,
    }
}
