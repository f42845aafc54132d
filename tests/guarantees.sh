#!/usr/bin/env bash
# Regenerates the measured figures in docs/guarantees.md: each part runs its
# command and writes its table between the markers
#   <!-- BEGIN <part> --> ... <!-- END <part> -->
# with the date, the machine, its load and the exact command. Parts:
#
#   fuzz    every fuzz target to 10 M executions or 30 min (FUZZ_RUNS,
#           FUZZ_SECONDS), fuzz/run-all.sh; needs nightly + cargo-fuzz
#   faults  the fault campaign: 50 kills, a 10-minute relay outage, a full
#           disk, clock steps (tests/faults, KIM_FAULTS_* knobs; ≈ 20 min)
#   soak    the one-hour soak (benches/soak.rs, KIM_SOAK_* knobs)
#
#   tests/guarantees.sh fuzz faults soak     # all three, several hours
#   FUZZ_SECONDS=60 tests/guarantees.sh fuzz # a quick look
#
# A part that fails (a crash, a broken promise) still writes its table, and
# the script exits non-zero naming it.
set -uo pipefail
cd "$(dirname "$0")/.."
doc=docs/guarantees.md
[ $# -gt 0 ] || set -- fuzz faults soak

machine() {
  local cpu
  cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
  printf '%s cores (%s), %s GiB' "$(nproc)" "$cpu" \
    "$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
}

# splice PART FILE: put FILE's text between PART's markers in $doc.
splice() {
  python3 - "$doc" "$1" "$2" <<'EOF'
import sys
doc, part, src = sys.argv[1:]
text = open(doc).read()
begin, end = f"<!-- BEGIN {part} -->", f"<!-- END {part} -->"
if begin not in text or end not in text:
    sys.exit(f"{doc} has no markers for {part}")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
body = open(src).read().rstrip("\n")
open(doc, "w").write(f"{head}{begin}\n{body}\n{end}{tail}")
EOF
}

status=0
for part in "$@"; do
  out=$(mktemp)
  start=$(date -u +%FT%TZ)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  case "$part" in
    fuzz)
      cmd="FUZZ_RUNS=${FUZZ_RUNS:-10000000} FUZZ_NICE=${FUZZ_NICE:-15} fuzz/run-all.sh ${FUZZ_SECONDS:-1800}"
      FUZZ_RUNS=${FUZZ_RUNS:-10000000} FUZZ_NICE=${FUZZ_NICE:-15} bash fuzz/run-all.sh "${FUZZ_SECONDS:-1800}" >"$out.table"
      rc=$? ;;
    faults)
      seed=${KIM_FAULTS_SEED:-2026} kills=${KIM_FAULTS_KILLS:-50} outage=${KIM_FAULTS_OUTAGE_SECS:-600}
      cmd="KIM_FAULTS_SEED=$seed KIM_FAULTS_KILLS=$kills KIM_FAULTS_OUTAGE_SECS=$outage cargo test --test faults"
      KIM_FAULTS_SEED=$seed KIM_FAULTS_KILLS=$kills KIM_FAULTS_OUTAGE_SECS=$outage \
        cargo test --test faults >"$out.log" 2>&1
      rc=$?
      # The campaign's summary: a line per part, then the verdict.
      { echo '```'; grep -E '^(kills|relay|disk|clock):|^fault campaign|^BROKEN|broken promise' "$out.log"; echo '```'; } >"$out.table"
      echo "The per-kill lines and what each part checks: [faults.md](faults.md)." >>"$out.table" ;;
    soak)
      secs=${KIM_SOAK_SECS:-3600}
      cmd="KIM_SOAK_SECS=$secs cargo bench --bench soak"
      KIM_SOAK_SECS=$secs KIM_SOAK_OUT="$out.soak" cargo bench --bench soak >"$out.log" 2>&1
      rc=$?
      cp "$out.soak/soak-figures.md" "$out.table" 2>/dev/null
      [ -f "$out.soak/soak.svg" ] && cp "$out.soak/soak.svg" docs/soak.svg && cp "$out.soak/soak.csv" docs/soak.csv
      echo "The plot: [soak.svg](soak.svg); the load and how to read it: [soak.md](soak.md)." >>"$out.table"
      rm -rf "$out.soak" ;;
    *) echo "unknown part: $part (fuzz, faults, soak)" >&2; exit 2 ;;
  esac
  {
    printf '%s, `%s`, exit %s; %s; load average %s before, %s after.\n\n' \
      "$start" "$cmd" "$rc" "$(machine)" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -s "$out.table" ]; then cat "$out.table"; else echo "(no figures: see the command's output)"; tail -20 "$out.log" 2>/dev/null; fi
  } >"$out"
  splice "$part" "$out"
  echo "$part: exit $rc, written to $doc"
  [ "$rc" -eq 0 ] || status=1
  rm -f "$out" "$out.table" "$out.log"
done
exit $status
