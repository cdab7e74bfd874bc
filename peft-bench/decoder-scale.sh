#!/usr/bin/env bash
# The 0.6B-scale decoder run (issue 20): a random Qwen3-0.6B-shaped model, peft4j (DecoderScaleBenchmark) and PyTorch +
# PEFT (scripts/bench_decoder_pytorch.py) on the same configurations, one process per configuration (peak RSS is a
# process's own), the two alternating, then one table of medians, peak RSS, ParameterBudget's estimate and the ratio
# peft4j / PyTorch in tokens/s. Run from the repository root or from peft-bench:
#
#   peft-bench/decoder-scale.sh                       # log and table in peft-bench/target/decoder-scale/
#   REPS=3 TRAIN_REPS=2 NEW=16 peft-bench/decoder-scale.sh
#   TABLE_ONLY=1 peft-bench/decoder-scale.sh          # the table again from the last log (or a run cut short)
#
# Knobs (environment): TRAIN_REPS timed training steps (default 1), REPS timed forwards and generations (default 1),
# NEW generated tokens (default 8), THREADS (default 2), PYTHON (default /tmp/fixtures-venv/bin/python), JAVA_OPTS
# (default -Xmx3g, JavaCPP's limit 17g). Every configuration warms up first on a small batch (2 x 32) or with a
# 2-token generation.
# Builds peft-core, peft-methods and peft-bench first (mvn compile; nothing is installed; Maven fetches what a fresh
# ~/.m2 lacks, such as the dependency plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN_REPS=${TRAIN_REPS:-1}
REPS=${REPS:-1}
NEW=${NEW:-8}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-/tmp/fixtures-venv/bin/python}
# JavaCPP refuses allocations past maxPhysicalBytes (an OutOfMemoryError naming it) instead of letting a configuration
# push the machine into the kernel's OOM killer; the 2-worker LoRA step needs ≈ 17 GB, the others ≤ 15 GB
JAVA_OPTS=${JAVA_OPTS:--Xmx3g -Dorg.bytedeco.javacpp.maxPhysicalBytes=17g}
OUT=peft-bench/target/decoder-scale
mkdir -p "$OUT"
LOG="$OUT/results.log"

if [ -z "${TABLE_ONLY:-}" ]; then
: > "$LOG"
mvn -B -q compile -pl peft-bench -am
# the module's dependencies, with this build's classes first (not the snapshots in ~/.m2)
mvn -B -q -pl peft-bench dependency:build-classpath -Dmdep.outputFile="$PWD/$OUT/cp.txt"
CP="peft-core/target/classes:peft-methods/target/classes:peft-bench/target/classes:$(cat "$OUT/cp.txt")"

# OMP_WAIT_POLICY=passive: spinning OpenMP threads make 2-thread medians swing 2-10x on a shared machine
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=passive

peft4j() {
  echo "# peft4j $*" >&2
  java $JAVA_OPTS -Dorg.nd4j.log.initialization=false -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -Dpeft4j.quietGradientBuild=true -cp "$CP" dev.peft4j.bench.DecoderScaleBenchmark "$@" 2>&1 \
    | grep -E '^RESULT|Exception|Error' | tee -a "$LOG" || true
}
pytorch() {
  echo "# pytorch $*" >&2
  "$PYTHON" scripts/bench_decoder_pytorch.py "$@" --threads "$THREADS" 2>&1 \
    | grep -E '^RESULT|Error' | tee -a "$LOG" || true
}

START=$(date +%s)
echo "NOTE start $(date -u +%FT%TZ) uptime:$(uptime | sed 's/.*load average/ load average/')" | tee -a "$LOG"
# alternating, PyTorch first in some pairs and peft4j first in others, so that a drift in the machine's load does not
# favour one side; the cheap and the most asked-for configurations first, so that a run cut short still has them
pytorch forward 1 --warmup 1 --reps "$REPS"
peft4j forward 1 --warmup 1 --reps "$REPS"
peft4j generate 1 --warmup 1 --reps "$REPS" --new "$NEW"
pytorch generate 1 --warmup 1 --reps "$REPS" --new "$NEW"
pytorch generate-cached 1 --warmup 1 --reps "$REPS" --new "$NEW"
pytorch generate-cached 8 --warmup 1 --reps "$REPS" --new "$NEW"
peft4j generate-cached 1 --warmup 1 --reps "$REPS" --new "$NEW"
peft4j generate-cached 8 --warmup 1 --reps "$REPS" --new "$NEW"
pytorch lora --warmup 1 --reps "$TRAIN_REPS"
peft4j lora 1 --micro 1 --warmup 1 --reps "$TRAIN_REPS"
peft4j qlora --micro 1 --warmup 1 --reps "$TRAIN_REPS"
pytorch qlora
pytorch forward 8 --warmup 1 --reps "$REPS"
peft4j forward 8 --warmup 1 --reps "$REPS"
peft4j generate 8 --warmup 1 --reps "$REPS" --new "$NEW"
pytorch generate 8 --warmup 1 --reps "$REPS" --new "$NEW"
peft4j lora 2 --micro 2 --warmup 1 --reps "$TRAIN_REPS"
echo "NOTE end $(date -u +%FT%TZ) uptime:$(uptime | sed 's/.*load average/ load average/') minutes:$(( ($(date +%s) - START) / 60 ))" \
  | tee -a "$LOG"
fi

python3 - "$LOG" "$TRAIN_REPS" "$REPS" "$NEW" <<'PY' | tee "$OUT/table.md"
import sys
log, train_reps, reps, new = sys.argv[1:]
rows = {}
notes = []
for line in open(log):
    if line.startswith("NOTE"):
        notes.append(line.strip()[5:])
    if not line.startswith("RESULT"):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    rows[(f["impl"], f["config"])] = f

def cell(f, key, fmt="{}"):
    v = f.get(key) if f else None
    return "—" if v in (None, "-") else fmt.format(float(v)) if fmt != "{}" else v

table = [  # label, peft4j config, PyTorch config
    ("LoRA r=16 q,v training step, 4 × 256 (peft4j: 4 micro-batches of 1 × 256), 1 worker", "lora-w1", "lora"),
    ("LoRA r=16 q,v training step, 4 × 256 (peft4j: 2 micro-batches of 2 × 256), 2 workers (DataParallel)",
     "lora-w2", "lora"),
    ("QLoRA (NF4 base) training step, 4 × 256 (peft4j: 4 micro-batches of 1 × 256)", "qlora", "qlora"),
    ("forward (prefill), 1 × 256", "forward-b1", "forward-b1"),
    ("forward (prefill), 8 × 256", "forward-b8", "forward-b8"),
    (f"greedy generation, no KV cache, batch 1, 64 + {new} tokens", "generate-nocache-b1", "generate-nocache-b1"),
    (f"greedy generation, no KV cache, batch 8, 64 + {new} tokens", "generate-nocache-b8", "generate-nocache-b8"),
    (f"greedy generation, KV cache, batch 1, 64 + {new} tokens", "generate-cache-b1", "generate-cache-b1"),
    (f"greedy generation, KV cache, batch 8, 64 + {new} tokens", "generate-cache-b8", "generate-cache-b8"),
]
print("| configuration | PyTorch median ms | PyTorch tokens/s | PyTorch peak RSS MiB | peft4j median ms "
      "| peft4j tokens/s | peft4j peak RSS MiB (after building) | ParameterBudget estimate MiB "
      "| peft4j / PyTorch tokens/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, ours, theirs in table:
    p, j = rows.get(("peft4j", ours)), rows.get(("pytorch", theirs))
    ratio = "—"
    if p and j and p.get("tokens_per_s", "-") != "-" and j.get("tokens_per_s", "-") != "-":
        ratio = "{:.2f}".format(float(p["tokens_per_s"]) / float(j["tokens_per_s"]))
    built = f" ({p['built_rss_mib']})" if p and "built_rss_mib" in p else ""
    print(f"| {label} | {cell(j, 'median_ms')} | {cell(j, 'tokens_per_s', '{:.2f}')} | {cell(j, 'peak_rss_mib')} "
          f"| {cell(p, 'median_ms')} | {cell(p, 'tokens_per_s', '{:.2f}')} | {cell(p, 'peak_rss_mib')}{built} "
          f"| {cell(p, 'estimate_mib')} | {ratio} |")
print()
print(f"Timed repetitions: training {train_reps}, forward and generation {reps}; each after one warm-up.")
for n in notes:
    print(f"- {n}")
PY
