//! The report of a minimized history (`harness check RUN_DIR --minimize`):
//! `RUN_DIR/minimal/` is a run folder of its own whose history is
//! `../minimal.jsonl` and whose configuration is the run's `test.json`
//! (both linked, not copied), with the minimal history's check as
//! `results.json`, so that the report draws it like any run.

use std::path::{Path, PathBuf};

use crate::store::{RunDir, RunResults};

/// Makes `run_dir/minimal/` from `run_dir/minimal.jsonl` and renders its
/// report; returns the page.
pub fn render(run_dir: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let dir = run_dir.join("minimal");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    for (link, target) in [
        (formats::history::FILE_NAME, "../minimal.jsonl"),
        ("test.json", "../test.json"),
    ] {
        let path = dir.join(link);
        let _ = std::fs::remove_file(&path);
        if run_dir
            .join(Path::new(target).file_name().unwrap_or_default())
            .exists()
        {
            std::os::unix::fs::symlink(target, &path)
                .with_context(|| format!("link {}", path.display()))?;
        }
    }
    let report = checker::check_path(&dir.join(formats::history::FILE_NAME), &Default::default())
        .context("check the minimal history")?;
    let mut results = RunResults::checked(report);
    results.exit_code = results.valid.map(|v| v.exit_code());
    RunDir { path: dir.clone() }
        .write_results(&results)
        .context("write its results.json")?;
    crate::report::render_run(&dir).context("render its report")
}
