#!/usr/bin/env bash
# The bar (issue 24): peft4j against PyTorch on this machine, in the same run. For each round, the PyTorch + PEFT
# reference (scripts/bench_pytorch.py, one process per configuration) and peft4j's JMH benchmark (one fork per
# configuration and worker count) run one after the other; odd rounds run PyTorch first, even rounds peft4j first
# (with the default 2 rounds: PyTorch, peft4j, peft4j, PyTorch), so that a slow spell of the host hits both sides.
# Then one table: per configuration the medians, tokens/s, peak RSS of each side and the ratio
# peft4j (2 workers) / PyTorch in tokens/s, per round and the median of the rounds. Run from the repository root or
# from peft-bench:
#
#   peft-bench/speed-vs-pytorch.sh                 # log, JMH files and table.md in peft-bench/target/speed-vs-pytorch/
#   ROUNDS=3 peft-bench/speed-vs-pytorch.sh
#   ROUNDS=1 PT_ARGS="--steps 3 --warmup 1" JMH_ARGS="-wi 1 -w 2 -i 1 -r 3" peft-bench/speed-vs-pytorch.sh  # smoke
#   TABLE_ONLY=1 peft-bench/speed-vs-pytorch.sh    # the table again from the last run's log (or a run cut short)
#   ONLY="inference mixed8" peft-bench/speed-vs-pytorch.sh  # some rows only (ids below), still both sides each round
#
# Knobs (environment): ROUNDS (default 2); THREADS (default 2: OMP_NUM_THREADS for ND4J, torch's threads);
# PT_ARGS, the PyTorch side's measurement (default "--steps 20 --warmup 3": medians of 20 steps after 3 warm-up);
# JMH_ARGS, the peft4j side's (default "-wi 2 -w 8 -i 3 -r 8": 16 s warm-up, then 24 s of SampleTime samples, per
# fork); PYTHON (default /tmp/fixtures-venv/bin/python, with torch, transformers and peft: scripts/README.md's pip
# line plus peft==0.21.0); JAVA_OPTS for JMH's own (non-forked) JVM. One round should take about 8 minutes on an idle
# 2-core machine with the defaults (estimated from a loaded run; not yet timed idle).
# Builds peft-core, peft-methods and peft-bench first (mvn compile; nothing is installed; Maven fetches what a fresh
# ~/.m2 lacks, such as the dependency plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
PT_ARGS=${PT_ARGS:---steps 20 --warmup 3}
JMH_ARGS=${JMH_ARGS:--wi 2 -w 8 -i 3 -r 8}
PYTHON=${PYTHON:-/tmp/fixtures-venv/bin/python}
JAVA_OPTS=${JAVA_OPTS:--Xmx512m}
OUT=peft-bench/target/speed-vs-pytorch
LOG="$OUT/results.log"

# The rows of the table, in order, one a line, fields separated by '|':
#   id | tokens per op | label | PyTorch side | peft4j side
# Both sides' commands are split into words with their variables ($PT_ARGS, $JMH_ARGS, $THREADS, ...) expanded when
# they run, so a row passes a script the options that script takes.
# PyTorch side: a Python script and its arguments, run as "$PYTHON <script> <arguments>"; it must print a line with
#   "median ms <x>" and "peak RSS <n> MiB" (bench_pytorch.py's line; the last such line counts). "=<id>" reuses row
#   <id>'s PyTorch figures (nothing is run again); "-" leaves the side empty.
# peft4j side: "jmh <benchmark regex> <JMH options>", run as "org.openjdk.jmh.Main <regex> <options> -rf json -rff ...":
#   the score is the median of a SampleTime benchmark, the score of any other mode (converted to ms per op); peak RSS
#   is the number in the "peak RSS ...: <n> MiB" line the fork prints; a "workers" parameter picks the 1- or 2-worker
#   column, and a result without one goes to the 2-worker column (other parameters must have one value per row). Or
#   "py <script> <arguments>", run and read as the PyTorch side (its figure goes to the 2-worker column). Or "-".
# The ratio is PyTorch's median ms / peft4j's (2 workers): peft4j's tokens/s over PyTorch's, both doing the same op.
# A row added later looks like (hypothetical names):
#   serve | 1024 | mixed adapters, 8 | scripts/bench_serve.py $PT_ARGS | jmh ServeBenchmark.mixed $JMH_ARGS
# (mixed8 and onnx below are two such rows; onnx's file is written once before the first round.)
ROWS='
inference | 1024 | forward, 8 × 128              | scripts/bench_pytorch.py inference $PT_ARGS --threads $THREADS | jmh MiniLmTrainingBenchmark -p config=inference -p workers=1,2 $JMH_ARGS
loraQV    | 1024 | LoRA q,v r=16 step, 8 × 128    | scripts/bench_pytorch.py loraQV $PT_ARGS --threads $THREADS    | jmh MiniLmTrainingBenchmark -p config=loraQV -p workers=1,2 $JMH_ARGS
fullFt    | 1024 | full fine-tuning step, 8 × 128 | scripts/bench_pytorch.py fullFt $PT_ARGS --threads $THREADS    | jmh MiniLmTrainingBenchmark -p config=fullFt -p workers=1,2 $JMH_ARGS
mixed8    | 1024 | mixed-adapter batch: 8 LoRA adapters, one a row, 8 × 128 | scripts/bench_mixed_adapters.py mixed8 $PT_ARGS --threads $THREADS | jmh MixedAdapterBenchmark.mixedBatch$ -p rows=8 $JMH_ARGS
onnx      | 1024 | LoRA q,v merged and exported to ONNX, onnxruntime 1.30, forward 8 × 128 | =inference | py scripts/bench_onnxruntime.py $OUT/minilm-lora-merged.onnx --label onnx-export $PT_ARGS --threads $THREADS
'

field() { echo "$1" | cut -d'|' -f"$2" | sed 's/^ *//; s/ *$//'; }

if [ -z "${TABLE_ONLY:-}" ]; then
if [ ! -x "$PYTHON" ] || ! "$PYTHON" -c 'import torch, transformers, peft, onnxruntime' 2>/dev/null; then
  echo "speed-vs-pytorch: $PYTHON cannot import torch, transformers, peft and onnxruntime; create the virtualenv (or set" \
       "PYTHON): python3 -m venv /tmp/fixtures-venv && /tmp/fixtures-venv/bin/pip install torch==2.13.0" \
       "transformers==5.18.0 safetensors==0.8.0 peft==0.21.0 onnxruntime==1.30.0" >&2
  exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT"
: > "$LOG"
echo "$ROWS" | grep -v '^ *$' > "$OUT/rows.txt"
if [ -n "${ONLY:-}" ]; then
  ids=" $(while IFS= read -r row; do field "$row" 1; done < "$OUT/rows.txt" | tr '\n' ' ')"
  for id in $ONLY; do
    case "$ids" in *" $id "*) ;; *) echo "speed-vs-pytorch: no row '$id' in ONLY; the rows are:$ids" >&2; exit 1 ;; esac
  done
  while IFS= read -r row; do
    case " $ONLY " in *" $(field "$row" 1) "*) ;; *) continue ;; esac
    ref=$(field "$row" 4)  # "=<id>" reuses another row's PyTorch figures: that row must run too
    case "$ref" in =*) case " $ONLY " in *" ${ref#=} "*) ;; *)
      echo "speed-vs-pytorch: row '$(field "$row" 1)' reuses row '${ref#=}''s PyTorch figures: add it to ONLY" >&2
      exit 1 ;; esac ;; esac
    echo "$row"
  done < "$OUT/rows.txt" > "$OUT/rows.only"
  mv "$OUT/rows.only" "$OUT/rows.txt"
fi
mvn -B -q compile -pl peft-bench -am
# the module's dependencies, with this build's classes first (not the snapshots in ~/.m2)
mvn -B -q -pl peft-bench dependency:build-classpath -Dmdep.outputFile="$PWD/$OUT/cp.txt"
CP="peft-core/target/classes:peft-methods/target/classes:peft-bench/target/classes:$(cat "$OUT/cp.txt")"
# the onnx row's file: LoRA q,v (seeded random B) merged into the bundled MiniLM and exported with OnnxExport
if grep -q '^onnx ' "$OUT/rows.txt"; then
  java -cp "$CP" dev.peft4j.bench.MiniLmLoraExport "$OUT/minilm-lora-merged.onnx" > "$OUT/onnx-export.txt" 2>&1 \
    || echo "FAILED export of $OUT/minilm-lora-merged.onnx: see $OUT/onnx-export.txt" >&2
fi

# OMP_WAIT_POLICY=passive: spinning OpenMP threads make 2-thread medians swing 2-10x on a shared machine; both sides
# get the same environment (torch reads OMP_NUM_THREADS too, and bench_pytorch.py sets its threads from --threads)
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=passive

note() { echo "NOTE $1 $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"; }

# one Python process: its line with the median goes to the log as "PY <round> <id> <side> <line>"
python_side() {  # round id side script-and-arguments
  local round=$1 id=$2 side=$3 line
  eval "set -- $4"  # the row's words, with $PT_ARGS, $THREADS, ... expanded
  echo "# round $round, $side $id: $*" >&2
  line=$("$PYTHON" "$@" 2>&1 | tee "$OUT/round$round-$side-$id.txt" \
    | grep -E 'median ms' | tail -n 1) || true
  if [ -z "$line" ]; then
    echo "FAILED $round $id $side: no 'median ms' line, see $OUT/round$round-$side-$id.txt" | tee -a "$LOG"
  else
    echo "PY $round $id $side $line" | tee -a "$LOG"
  fi
}

# one JMH run (one fork per parameter combination): its JSON and console output are kept beside the log
jmh_side() {  # round id regex-and-options
  local round=$1 id=$2 base="$OUT/round$round-peft4j-$id"
  eval "set -- $3"  # the row's words, with $JMH_ARGS, ... expanded
  echo "# round $round, peft4j $id: $*" >&2
  # shellcheck disable=SC2086  # JAVA_OPTS is split on purpose
  java $JAVA_OPTS -cp "$CP" org.openjdk.jmh.Main "$@" -rf json -rff "$base.json" > "$base.txt" 2>&1 || true
  grep -E '^# Parameters|peak RSS|Exception|Error' "$base.txt" >&2 || true
  if [ -s "$base.json" ] && grep -q '"benchmark"' "$base.json"; then
    echo "JMH $round $id $base.json $base.txt" | tee -a "$LOG"
  else
    echo "FAILED $round $id peft4j: no JMH result, see $base.txt" | tee -a "$LOG"
  fi
}

pytorch_rows() {
  local round=$1 row id cmd
  while IFS= read -r row; do
    id=$(field "$row" 1); cmd=$(field "$row" 4)
    case "$cmd" in -|=*) ;; *) python_side "$round" "$id" pytorch "$cmd" ;; esac
  done < "$OUT/rows.txt"
}
peft4j_rows() {
  local round=$1 row id cmd
  while IFS= read -r row; do
    id=$(field "$row" 1); cmd=$(field "$row" 5)
    case "$cmd" in
      jmh\ *) jmh_side "$round" "$id" "${cmd#jmh }" ;;
      py\ *) python_side "$round" "$id" peft4j "${cmd#py }" ;;
    esac
  done < "$OUT/rows.txt"
}

echo "COMMIT $(git describe --always --dirty)" | tee -a "$LOG"
echo "SETTINGS threads=$THREADS pt_args=$PT_ARGS jmh_args=$JMH_ARGS" | tee -a "$LOG"
note start
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    pytorch_rows "$round"; peft4j_rows "$round"
  else
    peft4j_rows "$round"; pytorch_rows "$round"
  fi
  note "after-round-$round"
done
note end
fi

# the table builder needs only the standard library: any python3 will do when the virtualenv is gone
TABLE_PYTHON=$PYTHON; [ -x "$TABLE_PYTHON" ] || TABLE_PYTHON=python3
"$TABLE_PYTHON" peft-bench/speed_vs_pytorch_table.py "$OUT/rows.txt" "$LOG" | tee "$OUT/table.md"
