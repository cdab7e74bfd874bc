"""PyTorch reference for peft-bench's DecoderScaleBenchmark: a Qwen3-0.6B-shaped decoder, the same steps and shapes.

A random-initialised Qwen3ForCausalLM with Qwen/Qwen3-0.6B's published config (hidden 1024, 28 layers, 16 heads /
8 KV heads of 128, intermediate 3072, vocabulary 151,936, tied embeddings, rope_theta 1e6, rms_norm_eps 1e-6, q/k
norms; 596,049,920 parameters, max_position_embeddings 40,960), built in memory, no download. Eager
mode, fp32, SDPA attention, two threads. One configuration per process, so that the peak RSS is its own:

  lora            PEFT LoRA r=16, alpha 32, q_proj and v_proj: a training step at 4 x 256 (forward with labels,
                  backward, gradient clipping at norm 1 and one torch.optim.AdamW update, as peft4j's Trainer does)
  qlora           needs bitsandbytes' 4-bit layers, which run on CUDA only: prints an empty result on this CPU machine
  forward B       the logits at B x 256, no gradients (prefill)
  generate B      model.generate, greedy, B prompts of 64 random tokens, --new tokens, use_cache=False (the whole
                  prefix recomputed for every token)
  generate-cached B   the same with use_cache=True (transformers' KV cache)

Warm-up steps and forwards run at 2 x 32 (as peft4j's), warm-up generations make 2 tokens. Prints one RESULT line
in peft-bench/decoder-scale.sh's format. Example:

  /tmp/fixtures-venv/bin/python scripts/bench_decoder_pytorch.py forward 1 --reps 2
"""
import argparse
import resource
import statistics
import time

import torch
import transformers
import peft

SEQ, TRAIN_BATCH, PROMPT = 256, 4, 64
WARMUP_BATCH, WARMUP_SEQ = 2, 32


def qwen3_0_6b():
    cfg = transformers.Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                   num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                   max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0,
                                   tie_word_embeddings=True, attention_dropout=0.0)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return transformers.Qwen3ForCausalLM(cfg)


def ids(batch, seq, vocab=151936):
    g = torch.Generator().manual_seed(2026 + batch * 1000 + seq)
    return torch.randint(1000, vocab, (batch, seq), generator=g)


def report(config, batch, times_ms, tokens_per_rep, extra=""):
    median = statistics.median(times_ms)
    print(f"RESULT impl=pytorch config={config} batch={batch} median_ms={median:.0f} "
          f"tokens_per_s={tokens_per_rep * 1000 / median:.2f} reps_ms={','.join(f'{t:.0f}' for t in times_ms)} "
          f"peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} "
          f"torch={torch.__version__} transformers={transformers.__version__} peft={peft.__version__} {extra}",
          flush=True)


def timed(fn, warmup, reps):
    times = []
    for i in range(warmup + reps):
        start = time.perf_counter()
        fn(i < warmup)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return times


def train(args):
    model = peft.get_peft_model(qwen3_0_6b(), peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                              target_modules=["q_proj", "v_proj"])).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    small, full = ids(WARMUP_BATCH, WARMUP_SEQ), ids(TRAIN_BATCH, SEQ)
    losses = []

    def step(warm):
        x = small if warm else full
        loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())

    times = timed(step, args.warmup, args.reps)
    report("lora", TRAIN_BATCH, times, TRAIN_BATCH * SEQ,
           f"trainable={sum(p.numel() for p in params)} loss={losses[0]:.4f}->{losses[-1]:.4f}")


def forward(args, batch):
    model = qwen3_0_6b().eval()
    small, full = ids(WARMUP_BATCH, WARMUP_SEQ), ids(batch, SEQ)

    def run(warm):
        x = small if warm else full
        with torch.no_grad():
            logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits
        assert torch.isfinite(logits[0, -1, 0])

    report(f"forward-b{batch}", batch, timed(run, args.warmup, args.reps), batch * SEQ, f"seq={SEQ}")


def generate(args, batch, cache):
    model = qwen3_0_6b().eval()
    prompt = ids(batch, PROMPT)
    first = []

    def run(warm):
        n = 2 if warm else args.new
        with torch.no_grad():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                                 min_new_tokens=n, do_sample=False, use_cache=cache, eos_token_id=None,
                                 pad_token_id=0)
        assert out.shape == (batch, PROMPT + n), out.shape
        first.append(out[0, PROMPT:PROMPT + 8].tolist())

    times = timed(run, args.warmup, args.reps)
    name = f"generate-{'cache' if cache else 'nocache'}-b{batch}"
    report(name, batch, times, batch * args.new,
           f"prompt={PROMPT} new={args.new} row0_tokens={str(first[-1]).replace(' ', '')}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config", choices=["lora", "qlora", "forward", "generate", "generate-cached"])
    parser.add_argument("batch", type=int, nargs="?", default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--new", type=int, default=32, help="generated tokens")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.config == "qlora":
        print("RESULT impl=pytorch config=qlora batch=4 median_ms=- tokens_per_s=- peak_rss_mib=- "
              "note=bitsandbytes_4bit_needs_CUDA", flush=True)
    elif args.config == "lora":
        train(args)
    elif args.config == "forward":
        forward(args, args.batch)
    else:
        generate(args, args.batch, args.config == "generate-cached")


if __name__ == "__main__":
    main()
