//! `harness check` glue: flags, then the human summary or the JSON report.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::{check_path, CheckError, CheckOptions, Format, ModelKind};

/// Flags of `harness check PATH`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// A run folder (history.jsonl + nodes/*/trace.jsonl) or a history file.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Print the CheckReport as JSON instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Input format: jsonl, edn, etcd-log or porcupine-kv (default: detected).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Model: register, cas-register, kv, append-kv, multi-register or mutex.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<ModelKind>,
    /// The model's initial value, as JSON (or EDN, e.g. '{:x 0 :y 0}').
    #[arg(long, value_name = "JSON")]
    pub init: Option<String>,
    /// Time budget of the linearizability check, e.g. 60s, 500ms, 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub time_limit: Duration,
    /// Memory budget of the search's memo tables, e.g. 1G, 512M.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1G")]
    pub memory_limit: u64,
    /// Do not split the history by key (slow; for comparison only).
    #[arg(long)]
    pub no_split: bool,
    /// Write the smallest sub-history that is still not linearizable to
    /// `minimal.jsonl` (in the run folder; beside a history file as
    /// `<name>.minimal.jsonl`), then check that.
    #[arg(long)]
    pub minimize: bool,
}

/// Where `--minimize` writes for `path`: `minimal.jsonl` in a run folder,
/// `<name>.minimal.jsonl` beside a file.
pub fn minimal_path(path: &std::path::Path) -> PathBuf {
    if path.is_dir() {
        path.join("minimal.jsonl")
    } else {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "history".into());
        path.with_file_name(format!("{stem}.minimal.jsonl"))
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    s.parse()
}

/// Parses "60", "60s", "500ms", "2m".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration such as 60s or 500ms, found {s:?}"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("expected a non-negative duration, found {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Parses "1073741824", "512M", "1G", "64K".
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches(['B', 'b', 'i']);
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a size such as 1G or 512M, found {s:?}"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("expected a non-negative size, found {s:?}"));
    }
    Ok((v * mult as f64) as u64)
}

/// Parses `--init`: JSON first, then EDN.
pub fn parse_init(s: &str) -> Result<serde_json::Value, CheckError> {
    serde_json::from_str(s).or_else(|_| {
        crate::edn::read_one(s)
            .map_err(|e| CheckError::Usage(format!("--init: expected a JSON or EDN value ({e})")))
    })
}

impl CheckArgs {
    /// The check options these flags describe.
    pub fn options(&self) -> Result<CheckOptions, CheckError> {
        Ok(CheckOptions {
            format: self.format,
            model: self.model,
            init: self.init.as_deref().map(parse_init).transpose()?,
            time_limit: self.time_limit,
            memory_limit_bytes: self.memory_limit,
            split_keys: !self.no_split,
            ..CheckOptions::default()
        })
    }
}

/// Runs the check and prints the summary (or JSON) to `out`; returns the exit code.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<i32, CheckError> {
    let opts = args.options()?;
    let io = |source| CheckError::Io {
        path: PathBuf::from("<output>"),
        source,
    };
    if args.minimize {
        return minimize(args, &opts, out);
    }
    let report = check_path(&args.path, &opts)?;
    if args.json {
        let s =
            serde_json::to_string_pretty(&report).map_err(|e| CheckError::Usage(e.to_string()))?;
        writeln!(out, "{s}").map_err(io)?;
    } else {
        writeln!(out, "{}", args.path.display()).map_err(io)?;
        report.write_summary(out).map_err(io)?;
    }
    Ok(report.exit_code())
}

/// `--minimize`: writes the minimal history and prints its check.
fn minimize(args: &CheckArgs, opts: &CheckOptions, out: &mut dyn Write) -> Result<i32, CheckError> {
    use crate::minimize::{minimize, Minimized};
    let io = |path: PathBuf| move |source| CheckError::Io { path, source };
    let m = match minimize(&args.path, opts)? {
        Minimized::Smaller(m) => m,
        Minimized::NotInvalid(v) => {
            writeln!(
                out,
                "{}: {}: nothing to minimize",
                args.path.display(),
                match v {
                    crate::Validity::Valid => "the history is linearizable",
                    _ => "the history's linearizability is unknown (out of budget)",
                }
            )
            .map_err(io("<output>".into()))?;
            return Ok(v.exit_code());
        }
    };
    let dst = minimal_path(&args.path);
    let file = std::fs::File::create(&dst).map_err(io(dst.clone()))?;
    let mut w = formats::history::Writer::new(std::io::BufWriter::new(file));
    for e in &m.events {
        w.write(e).map_err(io(dst.clone()))?;
    }
    w.flush().map_err(io(dst.clone()))?;
    if args.json {
        let s = serde_json::to_string_pretty(&m.report)
            .map_err(|e| CheckError::Usage(e.to_string()))?;
        writeln!(out, "{s}").map_err(io("<output>".into()))?;
    } else {
        writeln!(
            out,
            "{}: {} of {} ops, still not linearizable ({} sub-histories checked)",
            dst.display(),
            m.ops_after,
            m.ops_before,
            m.checks
        )
        .map_err(io("<output>".into()))?;
        m.report.write_summary(out).map_err(io("<output>".into()))?;
    }
    Ok(m.report.exit_code())
}
