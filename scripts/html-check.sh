#!/usr/bin/env bash
# REPORT.html in a real browser: a small comparison is written to a results
# folder, headless Chromium loads its REPORT.html (no network: the page is
# self-contained), and the check fails on any console error or uncaught
# exception, or when the tables, the sort script's headers or the inline
# charts are missing. A screenshot is saved under target/ and its path
# printed.
#
#   bash scripts/html-check.sh            # builds and uses target/release/rates
#   RATES=path/to/rates bash scripts/html-check.sh
#
# Needs Chromium (Debian package `chromium`): installed with apt-get when
# missing and this runs as root, else the check fails saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "html-check: installing Chromium (Debian package chromium)" >&2
    timeout 600 apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium >/dev/null
    browser=chromium
  else
    echo "html-check: Chromium is missing: install the Debian package \`chromium\` (apt-get install chromium)" >&2
    exit 1
  fi
fi

if [ -z "${RATES:-}" ]; then
  cargo build --release -p rates-cli
  RATES=target/release/rates
fi
out=target/html-check
rm -rf "$out"
mkdir -p "$out"
"$RATES" compare --scenario classic --strategies sync,tokio,process --runs 1 --warmup 0 \
  --out "$out/run" >"$out/compare.txt" 2>&1
page="$PWD/$out/run/REPORT.html"
[ -f "$page" ] || { echo "html-check: no REPORT.html in $out/run" >&2; exit 1; }

# The same flags for every load: headless, no sandbox (CI runs as root),
# no network (the page needs none), time for the script to run.
flags=(--headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
       --disable-extensions --virtual-time-budget=3000 --enable-logging=stderr --v=0)
timeout 120 "$browser" "${flags[@]}" --window-size=1100,2400 \
  --screenshot="$PWD/$out/report.png" "file://$page" 2>"$out/browser.log" >/dev/null
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$page" \
  >"$out/dom.html" 2>>"$out/browser.log"

fail=0
# The page itself logs nothing: any console line is a script's error.
if grep -E ":CONSOLE|Uncaught" "$out/browser.log" >"$out/console.txt"; then
  echo "html-check: the page logged errors:" >&2
  cat "$out/console.txt" >&2
  fail=1
fi
tables=$(grep -o '<table class="sortable"' "$out/dom.html" | wc -l)
titled=$(grep -o '<th title="sort by' "$out/dom.html" | wc -l)
charts=$(grep -o '<svg' "$out/dom.html" | wc -l)
# classic: a time and a cost table; each table's headers got the sort
# script's titles; four charts.
[ "$tables" -ge 2 ] || { echo "html-check: $tables tables, expected 2 or more" >&2; fail=1; }
[ "$titled" -ge 10 ] || { echo "html-check: the sort script did not run ($titled headers titled)" >&2; fail=1; }
[ "$charts" -ge 4 ] || { echo "html-check: $charts inline charts, expected 4 or more" >&2; fail=1; }
for s in sync tokio process; do
  grep -q "<td>$s</td>" "$out/dom.html" || { echo "html-check: no $s row" >&2; fail=1; }
done
if grep -qE '(src|href)="https?:' "$out/dom.html"; then
  echo "html-check: the page reaches the network" >&2
  fail=1
fi
[ -s "$out/report.png" ] || { echo "html-check: no screenshot" >&2; fail=1; }
echo "html-check: $tables tables, $charts charts, screenshot $PWD/$out/report.png"
exit $fail
