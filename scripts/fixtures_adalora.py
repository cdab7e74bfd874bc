#!/usr/bin/env python3
"""Golden AdaLoRA adapter saved by Hugging Face PEFT, for peft4j's AdaLoRA tests.

Writes, under peft-core/src/test/resources/fixtures/adalora-tiny-llama/:

  adapter_config.json + adapter_model.safetensors   exactly as PeftModel.save_pretrained writes them for AdaLoRA
        (init_r=6, target_r=2, lora_alpha=16, q_proj and v_proj of tiny-llama, total_step=20, tinit=2, tfinal=3,
        deltaT=2) after 20 real training steps on tiny-llama's golden inputs with update_and_allocate after each:
        E is nonzero, rank_pattern is HF's final allocation, the tensors are pruned to it.
  golden.safetensors   input_ids, attention_mask and the adapted model's logits.
  budgets.json         RankAllocator.budget_schedule(step) for every step of two schedules (budget, mask flag).
  allocator.safetensors + allocator.json   HF's RankAllocator driven by given gradients: the starting A, E, B,
        the gradient of every step before total_step - tfinal, and after each step the singular values and the
        rank_pattern (total_step=12, tinit=2, tfinal=3, deltaT=2; no optimizer, so only the masks change weights).

Also checks an adapter written by peft4j: `--check DIR` loads DIR with PeftModel.from_pretrained on tiny-llama and
prints the logits' max difference from DIR/golden.safetensors (written by peft4j's AdaLoraTest when run with
-Dpeft4j.adaloraCheckDir=DIR).

Run from the repository root:
    python scripts/fixtures_adalora.py
"""

import argparse
import json
import os
import shutil

import peft
import torch
import transformers
from safetensors.torch import load_file, save_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "peft-core", "src", "test", "resources", "fixtures")
BASE = os.path.join(FIXTURES, "tiny-llama")
OUT = os.path.join(FIXTURES, "adalora-tiny-llama")


def base_model():
    return transformers.LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32)


def logits_with(model, golden):
    with torch.no_grad():
        return model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"]).logits.float()


def config(**kw):
    return peft.AdaLoraConfig(init_r=6, target_r=2, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                              lora_dropout=0.0, **kw)


def budgets(cfg):
    model = peft.get_peft_model(base_model(), cfg)
    allocator = model.base_model.rankallocator
    return {"init_r": cfg.init_r, "target_r": cfg.target_r, "total_step": cfg.total_step, "tinit": cfg.tinit,
            "tfinal": cfg.tfinal, "deltaT": cfg.deltaT, "init_budget": allocator.init_bgt,
            "target_budget": allocator.target_bgt,
            "schedule": [list(allocator.budget_schedule(s)) for s in range(cfg.total_step + 1)]}


def make():
    shutil.rmtree(OUT, ignore_errors=True)
    torch.manual_seed(0)
    golden = load_file(os.path.join(BASE, "golden.safetensors"))
    model = peft.get_peft_model(base_model(), config(total_step=20, tinit=2, tfinal=3, deltaT=2))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    labels = golden["input_ids"].masked_fill(golden["attention_mask"] == 0, -100)
    for step in range(1, 21):
        loss = model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"], labels=labels).loss
        loss.backward()
        optimizer.step()
        model.base_model.update_and_allocate(step)
        optimizer.zero_grad()
    model.eval()
    pattern = model.peft_config["default"].rank_pattern
    logits = logits_with(model, golden)
    model.save_pretrained(OUT)
    os.remove(os.path.join(OUT, "README.md"))
    with open(os.path.join(OUT, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-llama"
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    with open(os.path.join(OUT, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "logits": logits.contiguous()}, os.path.join(OUT, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    schedules = [budgets(config(total_step=20, tinit=2, tfinal=3, deltaT=2)),
                 budgets(config(total_step=1000, tinit=100, tfinal=250, deltaT=10))]
    with open(os.path.join(OUT, "budgets.json"), "w") as f:
        json.dump(schedules, f)
    make_allocator_trace()
    reloaded = peft.PeftModel.from_pretrained(base_model(), OUT).eval()
    d = (logits_with(reloaded, golden) - logits).abs().max().item()
    base_logits = logits_with(base_model().eval(), golden)
    shapes = {k: tuple(v.shape) for k, v in load_file(os.path.join(OUT, "adapter_model.safetensors")).items()}
    print(f"rank pattern: { {k: sum(v) for k, v in pattern.items()} }")
    print(f"saved shapes: {shapes}")
    print(f"reload diff {d:.2e}; adapter moves logits by {(logits - base_logits).abs().max().item():.3f}")
    assert d < 1e-4, d


def make_allocator_trace():
    torch.manual_seed(1)
    model = peft.get_peft_model(base_model(), config(total_step=12, tinit=2, tfinal=3, deltaT=2))
    params = {n.replace("base_model.model.", "").replace(".default", ""): p for n, p in model.named_parameters()
              if "lora_" in n}
    tensors = {}
    with torch.no_grad():
        for name, p in params.items():
            p.normal_(0, 0.3)
            tensors["start." + name] = p.detach().clone()
    trace = []
    for step in range(1, 13):
        for name, p in params.items():
            p.grad = torch.randn_like(p) * 0.1
            if step < 12 - 3:
                tensors[f"grad{step}." + name] = p.grad.clone()
        model.base_model.update_and_allocate(step)
        for name, p in params.items():
            if name.endswith("lora_E"):
                tensors[f"E{step}." + name] = p.detach().clone()
        pattern = model.peft_config["default"].rank_pattern
        trace.append(None if pattern is None else {k.replace(".default", ""): v for k, v in pattern.items()})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "allocator.safetensors"))
    with open(os.path.join(OUT, "allocator.json"), "w") as f:
        json.dump(trace, f)
    print(f"allocator trace: final ranks { {k: sum(v) for k, v in trace[-1].items()} }")


def check(adapter_dir):
    model = peft.PeftModel.from_pretrained(base_model(), adapter_dir).eval()
    golden = load_file(os.path.join(adapter_dir, "golden.safetensors"))
    d = (logits_with(model, golden) - golden["logits"]).abs().max().item()
    print(f"HF PEFT {peft.__version__} loaded {adapter_dir}: max |logits - peft4j's| = {d:.2e}")
    assert d < 1e-4, d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", help="an adapter directory written by peft4j, with its golden.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        check(args.check)
    else:
        make()


if __name__ == "__main__":
    main()
