#!/usr/bin/env python3
"""Golden LN-tuning adapter saved by Hugging Face PEFT, for peft4j's LN_TUNING file-compatibility test.

Writes peft-core/src/test/resources/fixtures/ln-tuning-tiny-llama/: LNTuningConfig on tiny-llama's input_layernorm,
post_attention_layernorm and norm, the trainable copies' γ drawn around 1 (so the adapter changes the output);
adapter_config.json + adapter_model.safetensors as PeftModel.save_pretrained writes them, and golden.safetensors with
the adapted model's logits on tiny-llama's golden inputs.

`--check DIR` loads an LN-tuning adapter written by peft4j (DIR, with its golden.safetensors) in PEFT on tiny-llama
and prints the logits' max difference from peft4j's.

Run from the repository root after scripts/make_fixtures.py:
    python scripts/fixtures_ln_tuning.py
"""

import argparse
import json
import os
import shutil
import sys

import peft
import torch
import transformers
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_adapter_fixtures import BASE, FIXTURES, check, logits_with  # noqa: E402


def make(tag):
    out = os.path.join(FIXTURES, tag)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager",
                                                         dtype=torch.float32).eval()
    model = peft.get_peft_model(base, peft.LNTuningConfig(
        target_modules=["input_layernorm", "post_attention_layernorm", "norm"])).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_tuning_layers" in name:
                p.normal_(1, 0.3)
    golden = load_file(os.path.join(BASE, "golden.safetensors"))
    logits = logits_with(model, golden)
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-llama"
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "logits": logits.contiguous()}, os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    keys = sorted(load_file(os.path.join(out, "adapter_model.safetensors")).keys())
    print(f"[{tag}] keys {keys}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", help="an LN-tuning adapter directory written by peft4j, with its golden.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        check(args.check)
        return
    make("ln-tuning-tiny-llama")


if __name__ == "__main__":
    main()
