//! Ad-hoc timing of one file: `cargo run --release -p checker --example probe -- FILE [nosplit] [nowin] [noreduce] [seq]`.
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut opts = checker::CheckOptions::default();
    if args.iter().any(|a| a == "nosplit") {
        opts.split_keys = false;
    }
    if args.iter().any(|a| a == "nowin") {
        opts.split_windows = false;
    }
    if let Some(m) = std::env::var("M")
        .ok()
        .and_then(|m| checker::cli::parse_bytes(&m).ok())
    {
        opts.memory_limit_bytes = m;
    }
    if args.iter().any(|a| a == "noreduce") {
        opts.reduce = false;
    }
    if args.iter().any(|a| a == "seq") {
        opts.parallel = false;
    }
    opts.time_limit = std::time::Duration::from_secs(
        std::env::var("T")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(20),
    );
    let t = Instant::now();
    let r = checker::check_path(std::path::Path::new(&args[1]), &opts).unwrap();
    println!("{:?} in {:?}", r.valid, t.elapsed());
    let mut out = std::io::stdout();
    let _ = r.write_summary(&mut out);
}
