#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, one after the
# other at low priority (nice 15), and prints a Markdown table: target,
# executions, executions/s, edges covered (libFuzzer's `cov`), crashes.
# The committed seeds are fuzz/corpus/<target>/; what a run adds goes to
# fuzz/target/corpus/<target>/ (kept between runs, not committed).
# A crash stops that target's run; its input is in fuzz/artifacts/<target>/.
# Exit status: 1 if any target crashed, 2 if the build failed.
#
#   fuzz/run-all.sh 60          # every target, 60 s each
#   fuzz/run-all.sh 20 journal  # only the named targets
#   FUZZ_RUNS=10000000 fuzz/run-all.sh 1800   # 10 M executions or 30 min
#
# FUZZ_RUNS stops a target after that many executions (libFuzzer -runs);
# FUZZ_NICE sets the priority (default 15).
#
# FUZZ_PLAIN=1 builds without cargo-fuzz and without a sanitizer: `cargo
# +nightly build` of the targets with libFuzzer's coverage flags (what
# cargo-fuzz passes), debug profile (debug assertions and overflow checks
# on), into ../target/fuzz-plain. No `cargo install`, and about half the
# build: what .ci/run does. Rust's memory safety stands in for ASan there;
# the long runs use the sanitizer build.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(ls fuzz_targets | sed -n 's/\.rs$//p'); fi

# kim's build script names the git commit: fixed here, or every commit
# would rebuild kim (an hour on a busy 2-core machine).
export KIM_GIT_COMMIT=${KIM_GIT_COMMIT:-fuzz}
mkdir -p target/logs
# FUZZ_NO_BUILD=1 runs the binaries already built (after a change to kim
# that should not cost a rebuild of the sanitizer build mid-campaign).
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
if [ "${FUZZ_PLAIN:-0}" = 1 ]; then
  bin=../target/fuzz-plain/$triple/debug
  if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares" \
      nice -n 15 cargo +nightly build --locked --bins --target "$triple" --target-dir ../target/fuzz-plain \
      >target/logs/build.log 2>&1 || { tail -30 target/logs/build.log; exit 2; }
  fi
else
  bin=target/$triple/release
  if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    nice -n 15 cargo +nightly fuzz build -O >target/logs/build.log 2>&1 || { tail -30 target/logs/build.log; exit 2; }
  fi
fi

dict_for() {
  case "$1" in
    notification|withdrawal|admin_request|audit_line|alert_render) echo "-dict=dict/json.dict" ;;
    schools_csv|roll_csv) echo "-dict=dict/csv.dict" ;;
  esac
}

mkdir -p target/logs
printf '| target | executions | exec/s | edges (cov) | features (ft) | crashes |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
status=0
for t in "${targets[@]}"; do
  work=target/corpus/$t
  log=target/logs/$t.log
  mkdir -p "$work" "corpus/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  # shellcheck disable=SC2046
  # What `cargo fuzz run` runs, without its rebuild check.
  nice -n "${FUZZ_NICE:-15}" "$bin/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    $(dict_for "$t") "$work" "corpus/$t" >"$log" 2>&1
  after=$(find "artifacts/$t" -type f | wc -l)
  crashes=$((after - before))
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  eps=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
  [ "$crashes" -eq 0 ] || status=1
done
exit $status
