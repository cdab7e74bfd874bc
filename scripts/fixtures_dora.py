#!/usr/bin/env python3
"""Golden DoRA adapter saved by Hugging Face PEFT, for peft4j's DoRA file compatibility tests.

Writes, under peft-core/src/test/resources/fixtures/:

  dora-tiny-llama/  LoRA r=4, alpha=8, use_dora=True on q_proj, v_proj and down_proj of tiny-llama;
                    adapter_config.json + adapter_model.safetensors exactly as PeftModel.save_pretrained writes them
                    (the magnitude as `<module>.lora_magnitude_vector`), and golden.safetensors with the adapted
                    model's logits on tiny-llama's golden inputs.

A and B are both random (init_lora_weights=False) and the magnitude is perturbed off the weight's column norm, so
that every part of the adapter changes the output.

Also checks an adapter written by peft4j when given one: `--check DIR` loads DIR with PeftModel.from_pretrained on
tiny-llama and prints the logits' max difference from DIR/golden.safetensors (written by peft4j's test).

Run from the repository root after scripts/make_fixtures.py (it reads tiny-llama):
    python scripts/fixtures_dora.py
"""

import argparse
import json
import os
import shutil

import peft
import torch
import transformers
from safetensors.torch import load_file, save_file

from make_adapter_fixtures import BASE, FIXTURES, check, logits_with


def make_dora(tag, config):
    out = os.path.join(FIXTURES, tag)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager",
                                                         dtype=torch.float32).eval()
    model = peft.get_peft_model(base, config).eval()
    with torch.no_grad():  # B off zero and the magnitude off the column norm, so every part matters numerically
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.2 * torch.randn_like(p))
    golden = load_file(os.path.join(BASE, "golden.safetensors"))
    logits = logits_with(model, golden)
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))  # PEFT's model-card template, not needed
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-llama"  # not this machine's absolute path
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])  # a set: order varies run to run
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "logits": logits.contiguous()}, os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    base_logits = logits_with(transformers.LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager",
                                                                            dtype=torch.float32).eval(), golden)
    reloaded = peft.PeftModel.from_pretrained(
        transformers.LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32),
        out).eval()
    d = (logits_with(reloaded, golden) - logits).abs().max().item()
    keys = sorted(load_file(os.path.join(out, "adapter_model.safetensors")))
    print(f"[{tag}] files: {sorted(os.listdir(out))}; keys e.g. {keys[:3]}; reload diff {d:.2e}; "
          f"adapter moves logits by {(logits - base_logits).abs().max().item():.3f}")
    assert d < 1e-6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", help="an adapter directory written by peft4j, with its golden.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        check(args.check)
        return
    make_dora("dora-tiny-llama", peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                                 use_dora=True, init_lora_weights=False, lora_dropout=0.0))


if __name__ == "__main__":
    main()
