#!/usr/bin/env bash
# `make fuzz`: each fuzz target (fuzz/fuzz_targets/, bodies in crates/medic-fuzz) under cargo fuzz
# (libFuzzer, nightly) for MEDIC_FUZZ_SECONDS (default 300) each, one after another, seeded from
# events/<function>/ and fuzz/corpus/<target>/. The corpus it grows is minimised back into
# fuzz/corpus/<target>/ (which `make test` replays); a crash stops the run and its input is in
# fuzz/artifacts/<target>/. Figures per target: target/fuzz/<target>.json (read by
# `make reliability`). Usage: scripts/fuzz.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${MEDIC_FUZZ_SECONDS:-300}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(instance-healer alarm-responder rds-rerouter notifier reconciler)

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
rustup toolchain list | grep -q '^nightly' || { echo "make fuzz needs a nightly toolchain (cargo fuzz's sanitizers): rustup toolchain install nightly" >&2; exit 2; }

out=target/fuzz
mkdir -p "$out"
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  cp -n events/"$target"/*.json "$corpus"/ 2>/dev/null || true
  echo "== fuzz $target for ${seconds}s"
  # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb and -malloc_limit_mb: an
  # allocation blow-up is a crash. Both are findings, with the input kept in fuzz/artifacts/.
  started=$SECONDS
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 > "$out/$target.log" 2>&1
  status=$?
  set -e
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|ERROR|SUMMARY|stat::' "$out/$target.log" || true
  elapsed=$((SECONDS - started))
  # The units run and the coverage reached (libFuzzer's last status line: cov = edges, ft = features).
  python3 - "$out/$target.log" "$target" "$elapsed" "$status" > "$out/$target.json" <<'EOF'
import json, re, sys
log, target, elapsed, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(log, errors="replace").read()
def stat(name):
    m = re.findall(rf"stat::{name}:\s+(\d+)", text)
    return int(m[-1]) if m else None
lines = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", text, re.M)
last = lines[-1] if lines else (0, 0, 0, 0)
print(json.dumps({"target": target, "seconds": elapsed, "exit": status,
                  "executions": stat("number_of_executed_units") or int(last[0]),
                  "execs_per_second": stat("average_exec_per_sec"), "peak_rss_mb": stat("peak_rss_mb"),
                  "edges": int(last[1]), "features": int(last[2]),
                  "crash": "crash-" in text or "ERROR: libFuzzer" in text}))
EOF
  cat "$out/$target.json"
  [ "$status" -eq 0 ] || { echo "fuzz $target failed: see $out/$target.log and fuzz/artifacts/$target/" >&2; exit 1; }
  # Keep only the inputs that add coverage (the corpus `make test` replays).
  cargo +nightly fuzz cmin --fuzz-dir fuzz "$target" "$corpus" >/dev/null 2>&1 || true
  echo "   corpus: $(ls "$corpus" | wc -l) inputs"
done
