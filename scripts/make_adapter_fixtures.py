#!/usr/bin/env python3
"""Golden LoRA adapters saved by Hugging Face PEFT, for peft4j's adapter-file compatibility tests.

Writes, under peft-core/src/test/resources/fixtures/:

  lora-tiny-llama/  LoRA r=4, alpha=8, target_modules=[q_proj, v_proj] on tiny-llama, rsLoRA off;
                    adapter_config.json + adapter_model.safetensors exactly as PeftModel.save_pretrained writes
                    them, and golden.safetensors with the adapted model's logits on tiny-llama's golden inputs.
  lora-tiny-llama-rs/  the same with use_rslora=True, r=8, target_modules="all-linear".
  ia3-tiny-llama/   IA³ on k_proj, v_proj and down_proj (feed-forward) of tiny-llama, vectors drawn around 1.
  lora-tiny-bert/   LoRA r=4, alpha=16 on query and value of tiny-bert (MiniLM's architecture); golden
                    last_hidden_state.
  lora-tiny-gpt2/   LoRA r=4, alpha=8 on c_attn (GPT-2's fused q|k|v Conv1D, weight stored [in, out]) of tiny-gpt2
                    with fan_in_fan_out=True; golden logits, and the logits after merge_and_unload.

A and B are both random (init_lora_weights=False) so that the adapter changes the output.

Also checks an adapter written by peft4j when given one: `--check DIR` loads DIR with PeftModel.from_pretrained on
tiny-llama (`--base tiny-gpt2` for a GPT-2 adapter) and prints the logits' max difference from DIR/golden.safetensors
(written by peft4j's test).

Run from the repository root after scripts/make_fixtures.py (it reads tiny-llama):
    python scripts/make_adapter_fixtures.py
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


def logits_with(model, golden):
    with torch.no_grad():
        return model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"]).logits.float()


def make(tag, config):
    out = os.path.join(FIXTURES, tag)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager",
                                                         dtype=torch.float32).eval()
    model = peft.get_peft_model(base, config).eval()
    with torch.no_grad():  # move B off zero and IA³'s vectors off one, so the update matters numerically
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
            elif "ia3_l" in name:
                p.normal_(1, 0.3)
    golden = load_file(os.path.join(BASE, "golden.safetensors"))
    logits = logits_with(model, golden)
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))  # PEFT's model-card template, not needed
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-llama"  # not this machine's absolute path
    for field in ("target_modules", "feedforward_modules"):  # PEFT writes sets: order varies run to run
        if isinstance(adapter_config.get(field), list):
            adapter_config[field] = sorted(adapter_config[field])
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
    print(f"[{tag}] files: {sorted(os.listdir(out))}; reload diff {d:.2e}; "
          f"adapter moves logits by {(logits - base_logits).abs().max().item():.3f}")
    assert d < 1e-6


def make_bert(tag, config):
    """LoRA on the BERT encoder fixture (MiniLM's architecture): golden last_hidden_state."""
    out = os.path.join(FIXTURES, tag)
    bert_dir = os.path.join(FIXTURES, "tiny-bert")
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    base = transformers.BertModel.from_pretrained(bert_dir, add_pooling_layer=False, attn_implementation="eager",
                                                  dtype=torch.float32).eval()
    model = peft.get_peft_model(base, config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    golden = load_file(os.path.join(bert_dir, "golden.safetensors"))
    with torch.no_grad():
        hidden = model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"],
                       token_type_ids=golden["token_type_ids"]).last_hidden_state.float()
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-bert"
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "token_type_ids": golden["token_type_ids"], "last_hidden_state": hidden.contiguous()},
              os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    moved = (hidden - golden["last_hidden_state"]).abs().max().item()
    print(f"[{tag}] files: {sorted(os.listdir(out))}; adapter moves hidden states by {moved:.3f}")


def make_gpt2(tag, config):
    """LoRA on GPT-2's Conv1D c_attn with fan_in_fan_out=True: golden logits, and merged logits."""
    out = os.path.join(FIXTURES, tag)
    gpt2_dir = os.path.join(FIXTURES, "tiny-gpt2")
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    base = transformers.GPT2LMHeadModel.from_pretrained(gpt2_dir, attn_implementation="eager",
                                                        dtype=torch.float32).eval()
    model = peft.get_peft_model(base, config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    golden = load_file(os.path.join(gpt2_dir, "golden.safetensors"))
    logits = logits_with(model, golden)
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    assert adapter_config["fan_in_fan_out"] is True, adapter_config["fan_in_fan_out"]
    adapter_config["base_model_name_or_path"] = "tiny-gpt2"
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    merged = logits_with(model.merge_and_unload(), golden)
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "logits": logits.contiguous(), "merged_logits": merged.contiguous()},
              os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    shapes = {k: list(v.shape) for k, v in load_file(os.path.join(out, "adapter_model.safetensors")).items()}
    print(f"[{tag}] tensors {shapes}; adapter moves logits by {(logits - golden['logits']).abs().max().item():.3f}; "
          f"merged vs unmerged {(merged - logits).abs().max().item():.2e}")


def check(adapter_dir, base_name):
    base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(FIXTURES, base_name),
                                                             attn_implementation="eager", dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, adapter_dir).eval()
    golden = load_file(os.path.join(adapter_dir, "golden.safetensors"))
    d = (logits_with(model, golden) - golden["logits"]).abs().max().item()
    print(f"HF PEFT {peft.__version__} loaded {adapter_dir}: max |logits - peft4j's| = {d:.2e}")
    assert d < 1e-4, d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", help="an adapter directory written by peft4j, with its golden.safetensors")
    ap.add_argument("--base", default="tiny-llama", help="the fixture --check loads the adapter on (tiny-gpt2 too)")
    ap.add_argument("--only", help="write only this fixture (e.g. lora-tiny-gpt2)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        check(args.check, args.base)
        return
    gpt2 = ("lora-tiny-gpt2", peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True,
                                               init_lora_weights=False))
    if args.only == gpt2[0]:
        make_gpt2(*gpt2)
        return
    make("lora-tiny-llama", peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                             init_lora_weights=False, lora_dropout=0.0))
    make("lora-tiny-llama-rs", peft.LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", use_rslora=True,
                                                init_lora_weights=False, lora_dropout=0.05))
    make("ia3-tiny-llama", peft.IA3Config(target_modules=["k_proj", "v_proj", "down_proj"],
                                          feedforward_modules=["down_proj"]))
    make_bert("lora-tiny-bert", peft.LoraConfig(r=4, lora_alpha=16, target_modules=["query", "value"],
                                                init_lora_weights=False))
    make_gpt2(*gpt2)


if __name__ == "__main__":
    main()
