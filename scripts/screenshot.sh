#!/usr/bin/env bash
# Renders a run folder's report.html to a PNG with headless Chromium, the
# same way the browser test does (tests/report_browser.rs).
#
#   scripts/screenshot.sh RUN_DIR OUT.png [WIDTH [HEIGHT]]
#
# If RUN_DIR has no report.html yet (or RENDER=1), it is rendered first with
# `harness report RUN_DIR` (HARNESS_BIN, default: target/release/harness,
# else `cargo run --release -p harness`). CHROMIUM overrides the browser.
# Example, for the README screenshot:
#   scripts/screenshot.sh results/kv/latest docs/report-screenshot.png 1280 1600
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
run_dir=$1
out=$2
width=${3:-1280}
height=${4:-1600}
root=$(cd "$(dirname "$0")/.." && pwd)

if [[ ! -d $run_dir ]]; then
  echo "screenshot.sh: $run_dir is not a folder" >&2
  exit 2
fi
if [[ ! -f $run_dir/report.html || ${RENDER:-0} == 1 ]]; then
  harness_bin=${HARNESS_BIN:-$root/target/release/harness}
  if [[ -x $harness_bin ]]; then
    "$harness_bin" report "$run_dir"
  else
    (cd "$root" && cargo run --quiet --release -p harness -- report "$run_dir")
  fi
fi

chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [[ -z $chromium ]]; then
  echo "screenshot.sh: chromium not found (apt-get install -y chromium)" >&2
  exit 1
fi
report=$(cd "$run_dir" && pwd)/report.html
mkdir -p "$(dirname "$out")"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --disable-sync --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$width,$height" \
  --screenshot="$out_abs" "file://$report" 2>"$profile/chromium.log" || {
  cat "$profile/chromium.log" >&2
  exit 1
}
if [[ ! -s $out_abs ]]; then
  echo "screenshot.sh: chromium wrote no screenshot" >&2
  cat "$profile/chromium.log" >&2
  exit 1
fi
echo "$out_abs"
