#!/usr/bin/env bash
# Screenshots an HTML report with headless Chromium, to check that it renders
# offline in a real browser.
#
#   check-report-in-chromium.sh REPORT.html OUT.png
#
# Exits non-zero when Chromium is missing, fails, or writes no screenshot.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 REPORT.html OUT.png" >&2
    exit 2
fi
report=$1
out=$2
if [ ! -f "$report" ]; then
    echo "no such report: $report" >&2
    exit 2
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "chromium not found at $chromium (apt-get install -y chromium, or set CHROMIUM)" >&2
    exit 3
fi

# Absolute paths: Chromium resolves file:// URLs and --screenshot itself.
report_abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
out_dir=$(cd "$(dirname "$out")" && pwd)
out_abs=$out_dir/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

rm -f "$out_abs"
# The report must need nothing from the network; these flags keep Chromium
# itself from reaching out, and the timeout keeps a hung browser from
# blocking a test run.
timeout 120 "$chromium" \
    --headless \
    --no-sandbox \
    --disable-gpu \
    --disable-quic \
    --no-first-run \
    --disable-background-networking \
    --disable-component-update \
    --disable-sync \
    --hide-scrollbars \
    --user-data-dir="$profile" \
    --screenshot="$out_abs" \
    --window-size=1200,1600 \
    "file://$report_abs" >"$profile/chromium.log" 2>&1 || {
    status=$?
    cat "$profile/chromium.log" >&2
    echo "chromium failed with status $status" >&2
    exit 1
}
if [ ! -s "$out_abs" ]; then
    cat "$profile/chromium.log" >&2
    echo "chromium wrote no screenshot to $out_abs" >&2
    exit 1
fi
echo "$out_abs"
