"""onnxruntime's forward of an all-MiniLM-L6-v2 ONNX file at batch 8 x sequence 128, beside bench_pytorch.py.

Measures what the issue's "ONNX-exported inference" row needs: the median time of one forward (last_hidden_state) of
the file peft4j's OnnxExport writes (a LoRA adapter merged into the bundled ONNX file; MiniLmLoraExport writes one),
or of any other ONNX export of the same model, on 2 intra-op threads and 1 inter-op thread, after warm-up, with the
process's peak RSS. The inputs are built as bench_pytorch.py builds them (random ids, [CLS] ... [SEP], no padding).
Run each file in its own process so that the peak RSS is its own:

  /tmp/fixtures-venv/bin/python scripts/bench_onnxruntime.py /tmp/merged.onnx --label "ONNX export" --steps 30
"""
import argparse
import resource
import statistics
import time

import numpy as np
import onnxruntime

BATCH, SEQ = 8, 128


def batch():
    rng = np.random.default_rng(1)
    ids = rng.integers(1000, 29000, size=(BATCH, SEQ), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return dict(input_ids=ids, attention_mask=np.ones((BATCH, SEQ), dtype=np.int64),
                token_type_ids=np.zeros((BATCH, SEQ), dtype=np.int64))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", help="the ONNX file")
    parser.add_argument("--label", default="onnx", help="the row's name in the output line")
    parser.add_argument("--steps", type=int, default=30, help="measured forwards (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    inputs = batch()
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        (hidden,) = session.run(["last_hidden_state"], inputs)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1000)
    assert hidden.shape == (BATCH, SEQ, 384), hidden.shape
    median = statistics.median(times)
    print(f"onnxruntime {args.label:14s} median ms {median:7.1f} | tokens/s {BATCH * SEQ * 1000 / median:7.1f} | "
          f"min {min(times):7.1f} max {max(times):7.1f} | "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB "
          f"(onnxruntime {onnxruntime.__version__}, {args.threads} threads, {args.model})", flush=True)


if __name__ == "__main__":
    main()
