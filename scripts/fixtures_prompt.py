#!/usr/bin/env python3
"""Golden prompt-learning adapters saved by Hugging Face PEFT, for peft4j's prompt tuning, prefix tuning and P-tuning.

Writes, under peft-core/src/test/resources/fixtures/:

  prompt-tiny-llama/      prompt tuning, 5 virtual tokens (RANDOM init) on tiny-llama
  prompt-tiny-bert/       prompt tuning, 4 virtual tokens on tiny-bert (feature extraction)
  prefix-tiny-llama/      prefix tuning, 3 virtual tokens on tiny-llama (grouped-query attention: 2 kv heads of 4)
  prefix-proj-tiny-llama/ prefix tuning with prefix_projection=True (encoder_hidden_size 24), saved folded
  prefix-tiny-bert/       prefix tuning, 3 virtual tokens on tiny-bert
  ptuning-tiny-llama/     P-tuning, MLP prompt encoder (encoder_hidden_size 24), saved as the encoder's output

each with adapter_config.json + adapter_model.safetensors as PeftModel.save_pretrained writes them, and
golden.safetensors: the golden inputs, the adapted model's outputs on the real tokens only (HF returns a causal LM's
logits for the virtual positions too; they are dropped here) and, for tiny-llama, the loss with loss_labels. PEFT's
feature-extraction model ignores token_type_ids under prompt learning, so the BERT fixtures store all-zero types.

`--check DIR` loads an adapter written by peft4j (with the golden.safetensors peft4j's test wrote beside it) on
tiny-llama or tiny-bert and prints the max difference of the outputs on the real tokens.

Run from the repository root after scripts/make_fixtures.py:
    python scripts/fixtures_prompt.py
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
LLAMA = os.path.join(FIXTURES, "tiny-llama")
BERT = os.path.join(FIXTURES, "tiny-bert")


def llama():
    return transformers.LlamaForCausalLM.from_pretrained(LLAMA, attn_implementation="eager", dtype=torch.float32)


def bert():
    return transformers.BertModel.from_pretrained(BERT, add_pooling_layer=False, attn_implementation="eager",
                                                  dtype=torch.float32)


def outputs(model, golden, n, decoder):
    """The adapted model's per-position output on the real tokens (and the loss for a decoder)."""
    with torch.no_grad():
        if decoder:
            out = model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"],
                        labels=golden["loss_labels"])
            logits = out.logits.float()
            if logits.shape[1] > golden["input_ids"].shape[1]:  # prompt tuning / P-tuning: drop virtual positions
                logits = logits[:, n:]
            return {"logits": logits.contiguous(), "loss": out.loss.float().reshape(())}
        out = model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"],
                    token_type_ids=golden["token_type_ids"])
        hidden = out.last_hidden_state.float()
        if hidden.shape[1] > golden["input_ids"].shape[1]:
            hidden = hidden[:, n:]
        return {"last_hidden_state": hidden.contiguous()}


def make(tag, config, decoder=True):
    out = os.path.join(FIXTURES, tag)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    model = peft.get_peft_model((llama() if decoder else bert()).eval(), config).eval()
    golden = load_file(os.path.join(LLAMA if decoder else BERT, "golden.safetensors"))
    if not decoder:  # PEFT's feature extraction ignores token_type_ids for prompt learning: all types are 0
        golden["token_type_ids"] = torch.zeros_like(golden["token_type_ids"])
    n = config.num_virtual_tokens
    expected = outputs(model, golden, n, decoder)
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-llama" if decoder else "tiny-bert"
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    keep = ["input_ids", "attention_mask"] + (["loss_labels"] if decoder else ["token_type_ids"])
    save_file({**{k: golden[k] for k in keep}, **expected}, os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    reloaded = peft.PeftModel.from_pretrained((llama() if decoder else bert()), out).eval()
    again = outputs(reloaded, golden, n, decoder)
    d = max((again[k] - expected[k]).abs().max().item() for k in expected)
    key = "logits" if decoder else "last_hidden_state"
    moved = (expected[key] - golden[key]).abs().max().item()
    saved = load_file(os.path.join(out, "adapter_model.safetensors"))
    print(f"[{tag}] tensors {[(k, tuple(v.shape)) for k, v in saved.items()]}; reload diff {d:.2e}; "
          f"prompt moves {key} by {moved:.3f}")
    assert d < 1e-5, d


def check(adapter_dir):
    golden = load_file(os.path.join(adapter_dir, "golden.safetensors"))
    decoder = "logits" in golden
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        n = json.load(f)["num_virtual_tokens"]
    base = (llama() if decoder else bert()).eval()
    cls = peft.PeftModelForCausalLM if decoder else peft.PeftModelForFeatureExtraction
    model = cls.from_pretrained(base, adapter_dir).eval()
    got = outputs(model, golden, n, decoder)
    key = "logits" if decoder else "last_hidden_state"
    d = (got[key] - golden[key]).abs().max().item()
    loss = f", |loss - peft4j's| = {abs(got['loss'] - golden['loss']).item():.2e}" if decoder else ""
    print(f"HF PEFT {peft.__version__} loaded {adapter_dir} ({model.peft_config['default'].peft_type}): "
          f"max |{key} - peft4j's| = {d:.2e}{loss}")
    assert d < 1e-4, d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", help="an adapter directory written by peft4j, with its golden.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        check(args.check)
        return
    make("prompt-tiny-llama", peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5))
    make("prompt-tiny-bert", peft.PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=4),
         decoder=False)
    make("prefix-tiny-llama", peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    make("prefix-proj-tiny-llama", peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3,
                                                           prefix_projection=True, encoder_hidden_size=24))
    make("prefix-tiny-bert", peft.PrefixTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=3),
         decoder=False)
    make("ptuning-tiny-llama", peft.PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=4,
                                                        encoder_hidden_size=24))


if __name__ == "__main__":
    main()
