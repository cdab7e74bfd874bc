#!/usr/bin/env bash
# The GPU checks of peft-cuda, for a Linux x86-64 machine with an NVIDIA GPU, its driver, CUDA 11.6 and Maven Central.
#
#   peft-cuda/gpu-check.sh                 everything below (first run downloads ~600 MB of CUDA natives)
#   peft-cuda/gpu-check.sh --cpu-only      only the CPU half, to try the script where there is no GPU
#   QWEN_LAYERS=2 peft-cuda/gpu-check.sh   a 2-layer Qwen3-0.6B-shaped decoder instead of 28 (less memory);
#                                          QWEN_VOCAB=8192 shrinks its vocabulary too; JAVA_XMX (default 6g) the heap
#
# 1. the tests tagged gpu (device info, settings, LoRA training on the GPU), which are skipped without a device;
# 2. a CPU run and a CUDA run of GpuCheck in separate JVMs (ND4J chooses one backend per process): MiniLM's forward
#    and a LoRA q,v step (loss + LoRA gradients) at 4 x 128, and the same step on a Qwen3-0.6B-shaped decoder with
#    seeded random weights at 2 x 32; every array compared, GPU against CPU, relative max error <= 1e-3;
# 3. on the GPU: training tokens/s at 32 x 128 (BATCH, SEQ) and the peak device memory in use, for both models.
# The CUDA 11.6 runtime must be installed, or add org.bytedeco:cuda:11.6-8.3-1.5.7:linux-x86_64-redist (1.8 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
CPU_ONLY=false
[[ "${1:-}" == "--cpu-only" ]] && CPU_ONLY=true
QWEN_LAYERS="${QWEN_LAYERS:-28}"
QWEN_VOCAB="${QWEN_VOCAB:-151936}"
BATCH="${BATCH:-32}"
SEQ="${SEQ:-128}"
OUT="${OUT:-peft-cuda/target/gpu-check}"
JAVA_OPTS=(-Xmx"${JAVA_XMX:-6g}" -Dorg.bytedeco.javacpp.maxbytes=24g -Dorg.bytedeco.javacpp.maxphysicalbytes=32g
  -Dorg.nd4j.log.initialization=false -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
mkdir -p "$OUT"

# classpath of peft-cuda's tests; the reactor modules resolve to their target/classes directories
classpath() { # $1: extra Maven flags ("" or -Pcuda-backend), $2: output file
  mvn -B -q $1 -pl peft-cuda -am test-compile dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile="$(pwd)/$2" >/dev/null
  echo "peft-cuda/target/test-classes:peft-cuda/target/classes:$(cat "$2")"
}

echo "== CPU reference (nd4j-native)"
CPU_CP=$(classpath "" "$OUT/cpu.classpath")
java "${JAVA_OPTS[@]}" -cp "$CPU_CP" dev.peft4j.cuda.GpuCheck run "$OUT/cpu" --qwen-layers "$QWEN_LAYERS" --qwen-vocab "$QWEN_VOCAB"

if $CPU_ONLY; then
  echo "== --cpu-only: a second CPU run compared with the first (must be exactly equal)"
  java "${JAVA_OPTS[@]}" -cp "$CPU_CP" dev.peft4j.cuda.GpuCheck run "$OUT/cpu2" --qwen-layers "$QWEN_LAYERS" --qwen-vocab "$QWEN_VOCAB" \
    --throughput --batch 4 --seq 32
  java "${JAVA_OPTS[@]}" -cp "$CPU_CP" dev.peft4j.cuda.GpuCheck compare "$OUT/cpu" "$OUT/cpu2"
  exit 0
fi

echo "== tests tagged gpu (nd4j-cuda-11.6)"
mvn -B -Pcuda-backend -pl peft-cuda -am test -Dgroups=gpu -Dsurefire.failIfNoSpecifiedTests=false

echo "== CUDA run"
GPU_CP=$(classpath "-Pcuda-backend" "$OUT/gpu.classpath")
java "${JAVA_OPTS[@]}" -cp "$GPU_CP" dev.peft4j.cuda.GpuCheck run "$OUT/gpu" --qwen-layers "$QWEN_LAYERS" --qwen-vocab "$QWEN_VOCAB" \
  --batch "$BATCH" --seq "$SEQ"

echo "== GPU against CPU"
java "${JAVA_OPTS[@]}" -cp "$CPU_CP" dev.peft4j.cuda.GpuCheck compare "$OUT/cpu" "$OUT/gpu"
