"""Hugging Face PEFT reference for peft-bench's MixedAdapterBenchmark: serving 8 LoRA adapters at once.

all-MiniLM-L6-v2's architecture (BERT, 6 layers, hidden 384, 12 heads, intermediate 1536; transformers' random
initialisation, no network needed), 8 LoRA adapters r=16, alpha 32 on query and value, A and B random non-zero (seed
42, N(0, 0.05^2)) so that they differ, eval mode, no gradients, two threads, sequences of 128 tokens. Configurations:

  mixed8, mixed32  model(**batch, adapter_names=[...]) on 8 or 32 rows, row i with adapter i mod 8 (PEFT's
                   _mixed_batch_forward: the base linear once, then each adapter's delta on its sub-batch)
  callers1, 2, 4   that many Python threads, each with its own adapter and batch of 8 rows, each calling
                   model(**batch, adapter_names=[its adapter] * 8) once; one operation = all of them done

Before timing, the mixed batch is checked to really apply a different adapter per row: every row must equal that row
run alone with set_adapter(its adapter) (max |diff| <= 1e-4) and differ from the base model (> 1e-3). Prints the median
over --steps operations after --warmup, rows/s, the median process CPU time (user + sys, all threads: the figure
to compare on a loaded machine) and peak RSS. Run each configuration in its own process so that its peak
RSS is its own:

  /tmp/fixtures-venv/bin/python scripts/bench_mixed_adapters.py mixed8 --steps 10
"""
import argparse
import resource
import statistics
import threading
import time

import peft
import torch
import transformers

ADAPTERS, SEQ = 8, 128


def model_with_adapters():
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                  intermediate_size=1536, max_position_embeddings=512, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    bert = transformers.BertModel(cfg, add_pooling_layer=False)
    lora = dict(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["query", "value"])
    model = peft.get_peft_model(bert, peft.LoraConfig(**lora), adapter_name="a0")
    for i in range(1, ADAPTERS):
        model.add_adapter(f"a{i}", peft.LoraConfig(**lora))
    g = torch.Generator().manual_seed(42)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def batch(rows, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 29000, (rows, SEQ), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    return dict(input_ids=ids, attention_mask=torch.ones(rows, SEQ, dtype=torch.long),
                token_type_ids=torch.zeros(rows, SEQ, dtype=torch.long))


def check_rows_get_their_adapter(model, inputs, names):
    with torch.no_grad():
        mixed = model(**inputs, adapter_names=names).last_hidden_state
        with model.disable_adapter():
            base = model(**inputs).last_hidden_state
        worst, least_change = 0.0, float("inf")
        for i, name in enumerate(names):
            model.set_adapter(name)
            alone = model(**{k: v[i:i + 1] for k, v in inputs.items()}).last_hidden_state[0]
            worst = max(worst, (mixed[i] - alone).abs().max().item())
            least_change = min(least_change, (mixed[i] - base[i]).abs().max().item())
        model.set_adapter("a0")
    assert worst <= 1e-4, f"a mixed row differs from its adapter run alone by {worst}"
    assert least_change > 1e-3, f"a mixed row equals the base model (max change {least_change})"
    print(f"check: every row equals its adapter alone (max |diff| {worst:.2e}) and differs from the base "
          f"(least max change {least_change:.3f})", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+", help="mixed8, mixed32, callers1, callers2, callers4")
    parser.add_argument("--steps", type=int, default=10, help="measured operations (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = model_with_adapters()
    names = [f"a{i}" for i in range(ADAPTERS)]
    check_rows_get_their_adapter(model, batch(ADAPTERS, 1), names)
    for config in args.configs:
        if config.startswith("mixed"):
            rows = int(config[len("mixed"):])
            inputs = batch(rows, 1)
            per_row = [names[i % ADAPTERS] for i in range(rows)]

            def operation():
                model(**inputs, adapter_names=per_row)
        elif config.startswith("callers"):
            callers = int(config[len("callers"):])
            rows = 8 * callers
            batches = [batch(8, 10 + c) for c in range(callers)]

            def call(c):
                with torch.no_grad():
                    model(**batches[c], adapter_names=[names[c]] * 8)

            def operation():
                threads = [threading.Thread(target=call, args=(c,)) for c in range(callers)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        else:
            raise SystemExit(f"unknown configuration {config!r}; expected mixed8, mixed32, callers1, callers2, "
                             "callers4")
        times, cpu = [], []
        with torch.no_grad():
            for i in range(args.warmup + args.steps):
                start, start_cpu = time.perf_counter(), time.process_time()
                operation()
                if i >= args.warmup:
                    times.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
        median = statistics.median(times)
        print(f"hf-peft {config:9s} median ms {median:7.1f} | rows/s {rows * 1000 / median:6.1f} | "
              f"min {min(times):7.1f} max {max(times):7.1f} | cpu ms {statistics.median(cpu):7.1f} | peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB (torch {torch.__version__}, "
              f"transformers {transformers.__version__}, peft {peft.__version__}, {args.threads} threads)", flush=True)


if __name__ == "__main__":
    main()
