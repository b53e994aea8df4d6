//! The `harness` binary: parses flags and hands over to the library.
//!
//! Exit codes (docs/formats.md, "Exit codes"): 0 valid, 1 invalid, 2 unknown, 3 error. Clap's
//! own usage errors (normally 2, which would read as "unknown") exit 3.

use clap::error::ErrorKind;
use clap::Parser;
use harness::cli::{Cli, Command};
use harness::run::EXIT_ERROR;
use std::process::ExitCode;
use tokio::sync::watch;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(EXIT_ERROR as u8),
            };
        }
    };
    if let Command::Node(args) = cli.command {
        // The very code of the `node` binary, so that one build always has a
        // matching node and harness (its own logging, its own runtime).
        return node::main_with(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HARNESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let mut stdout = std::io::stdout();
    match cli.command {
        Command::Check(args) => match checker::cli::run(&args, &mut stdout) {
            Ok(code) => {
                if code == 1 && args.minimize && args.path.is_dir() && !args.json {
                    match harness::minimal::render(&args.path) {
                        Ok(page) => println!("report: {}", page.display()),
                        Err(e) => eprintln!("warning: no report of the minimal history: {e:#}"),
                    }
                }
                Ok(code)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(e.exit_code())
            }
        },
        Command::Node(_) => unreachable!("handled before logging is set up"),
        Command::Report(args) => Ok(harness::report::command(&args.path, &mut stdout)),
        Command::Run(args) => {
            let rt = runtime()?;
            let argv: Vec<String> = std::env::args().collect();
            rt.block_on(async move {
                let stop = interrupt_signal();
                let config = args.config();
                Ok(harness::run::run_tests(
                    &config,
                    args.seed,
                    args.test_count,
                    argv,
                    &mut stdout,
                    stop,
                )
                .await)
            })
        }
        Command::Suite(args) => {
            if args.print_nightly {
                print!("{}", harness::suite::NIGHTLY);
                return Ok(0);
            }
            let rt = runtime()?;
            rt.block_on(async move {
                let stop = interrupt_signal();
                Ok(harness::suite::command(&args.request(), &mut stdout, stop).await)
            })
        }
        Command::Replay(args) => {
            let rt = runtime()?;
            let argv: Vec<String> = std::env::args().collect();
            rt.block_on(async move {
                let stop = interrupt_signal();
                Ok(harness::replay::command(&args.request(), argv, &mut stdout, stop).await)
            })
        }
        Command::Selftest(args) => {
            let rt = runtime()?;
            rt.block_on(async move {
                let stop = interrupt_signal();
                Ok(harness::selftest::run(&args, &mut stdout, stop).await)
            })
        }
        Command::Bench(args) => {
            let rt = runtime()?;
            rt.block_on(async move {
                let stop = interrupt_signal();
                Ok(harness::bench::run_bench(&args, &mut stdout, stop).await)
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A flag that turns true on the first SIGINT or SIGTERM: the run then
/// stops the faults and the nodes and checks what it recorded. A second
/// signal exits at once (the nodes die with the harness).
fn interrupt_signal() -> watch::Receiver<bool> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                eprintln!("\ninterrupted: stopping faults and nodes, then checking the history (again to quit now)");
                let _ = tx.send(true);
            } else {
                eprintln!("interrupted twice: exiting without a verdict");
                std::process::exit(EXIT_ERROR);
            }
        }
    });
    rx
}
