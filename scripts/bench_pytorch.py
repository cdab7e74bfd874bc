"""PyTorch reference for peft-bench's MiniLmTrainingBenchmark: the same model shape, batch and training step.

Measures, on the machine it runs on, what the throughput issue's PyTorch figures measured elsewhere: all-MiniLM-L6-v2's
architecture (BERT, 6 layers, hidden 384, 12 heads, intermediate 1536) at batch 8 x sequence 128, two threads, eager
mode, and per configuration the median time of a step after warm-up:

  inference      the encoder's forward (last_hidden_state), no gradients
  headOnly       a mean-pooled 2-class classifier trained on the frozen encoder
  loraQV         Hugging Face PEFT LoRA r=16, alpha 32, dropout 0.1 on query and value, classifier trained beside it
  loraAllLinear  the same on every linear layer of the encoder
  fullFt         every weight but the three embedding tables

A training step is forward, cross-entropy, backward and one torch.optim.AdamW update, as peft4j's step is (gradients,
then the trainer's AdamW). The encoder has no dropout of its own (hidden and attention dropout 0), as peft4j's graph.
Weights are transformers' random initialisation: the time of a step does not depend on the values (PyTorch's erf is
vectorised), and no network is needed. Run each configuration in its own process so that its peak RSS is its own:

  /tmp/fixtures-venv/bin/python scripts/bench_pytorch.py loraQV --steps 8
"""
import argparse
import resource
import statistics
import time

import torch
import transformers
import peft

BATCH, SEQ = 8, 128
ATTENTION = "sdpa"


def encoder():
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                  intermediate_size=1536, max_position_embeddings=512, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    cfg._attn_implementation = ATTENTION
    return transformers.BertModel(cfg, add_pooling_layer=False)


class Classifier(torch.nn.Module):
    """Mean pooling over the real tokens and a linear layer to two classes, as peft4j's Heads (MEAN pooling)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert
        self.classifier = torch.nn.Linear(384, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.classifier((h * m).sum(1) / m.sum(1))


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 29000, (BATCH, SEQ), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    return dict(input_ids=ids, attention_mask=torch.ones(BATCH, SEQ, dtype=torch.long),
                token_type_ids=torch.zeros(BATCH, SEQ, dtype=torch.long)), torch.arange(BATCH) % 2


def model_for(config):
    bert = encoder()
    if config == "inference":
        return bert.eval()
    model = Classifier(bert)
    if config in ("loraQV", "loraAllLinear"):
        targets = ["query", "value"] if config == "loraQV" else ["query", "key", "value", "dense"]
        lora = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.1, target_modules=targets,
                               modules_to_save=["classifier"])
        return peft.get_peft_model(model, lora).train()
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("classifier.") or (config == "fullFt" and "embeddings" not in name)
    return model.train()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--steps", type=int, default=8, help="measured steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attention", default="sdpa", help="transformers' attn_implementation: sdpa or eager")
    args = parser.parse_args()
    global ATTENTION
    ATTENTION = args.attention
    torch.set_num_threads(args.threads)
    inputs, labels = batch()
    for config in args.configs:
        model = model_for(config)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4) if config != "inference" else None
        times = []
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            if optimizer is None:
                with torch.no_grad():
                    model(**inputs)
            else:
                loss = torch.nn.functional.cross_entropy(model(**inputs), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times)
        trainable = sum(p.numel() for p in params)
        print(f"pytorch {config:14s} median ms {median:7.1f} | tokens/s {BATCH * SEQ * 1000 / median:7.1f} | "
              f"min {min(times):7.1f} max {max(times):7.1f} | trainable {trainable} | "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB "
              f"(torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
              f"attention {ATTENTION})", flush=True)


if __name__ == "__main__":
    main()
