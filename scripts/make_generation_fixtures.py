#!/usr/bin/env python3
"""Golden greedy generations for peft4j's Generator (issue 20), from transformers' model.generate.

For each fixture below writes <fixture>/generation_golden.safetensors under
peft-core/src/test/resources/fixtures/:

  input_ids       int64 [3, 9]   three prompts of lengths 6, 3, 9 (ids in [3, 127]), LEFT-padded with id 0
  attention_mask  int64 [3, 9]   0 on the pads
  sequences       int64 [3, 9 + N]  model.generate(do_sample=False, max_new_tokens=N, pad_token_id=0), N = 10
  logits          float32 [N, 3, V]  the raw next-token logits of each step (output_logits=True)

Fixtures: the checkpoints tiny-llama, tiny-qwen2, tiny-qwen3, tiny-gemma; and the adapters saved by PEFT 0.21 on tiny-llama:
lora-tiny-llama (LoRA q,v), prompt-tiny-llama (5 virtual tokens), prefix-tiny-llama (3 virtual keys/values).
EOS is the checkpoint's (generation_config.json: 2); these random models do not emit it within N tokens.

Usage: /tmp/fixtures-venv/bin/python scripts/make_generation_fixtures.py
"""

import os

import peft
import torch
import transformers
from safetensors.torch import save_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "peft-core", "src", "test", "resources", "fixtures")
LENGTHS = [6, 3, 9]
NEW_TOKENS = 10
PAD = 0


def prompts():
    g = torch.Generator().manual_seed(2020)
    s = max(LENGTHS)
    ids = torch.full((len(LENGTHS), s), PAD, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(LENGTHS):
        ids[row, s - n:] = torch.randint(3, 128, (n,), generator=g)
        mask[row, s - n:] = 1
    return ids, mask


def base(name):
    m = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(FIXTURES, name), attn_implementation="eager")
    return m.eval()


def write(fixture, model):
    ids, mask = prompts()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=NEW_TOKENS,
                             pad_token_id=PAD, output_logits=True, return_dict_in_generate=True)
    logits = torch.stack(out.logits).float().contiguous()
    path = os.path.join(FIXTURES, fixture, "generation_golden.safetensors")
    save_file({"input_ids": ids, "attention_mask": mask, "sequences": out.sequences.contiguous(), "logits": logits},
              path, metadata={"torch": torch.__version__, "transformers": transformers.__version__,
                              "peft": peft.__version__, "format": "pt", "padding_side": "left",
                              "max_new_tokens": str(NEW_TOKENS)})
    print(fixture, out.sequences[:, ids.shape[1]:].tolist())


def main():
    torch.manual_seed(0)
    for name in ["tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma"]:
        write(name, base(name))
    for adapter in ["lora-tiny-llama", "prompt-tiny-llama", "prefix-tiny-llama"]:
        model = peft.PeftModel.from_pretrained(base("tiny-llama"), os.path.join(FIXTURES, adapter)).eval()
        write(adapter, model)


if __name__ == "__main__":
    main()
