#!/usr/bin/env python3
"""Decoder sequence classification fixtures (issue 20): transformers' `…ForSequenceClassification` logits on the tiny
decoders, a tiny Qwen3 checkpoint with a trained BPE tokenizer, and a PEFT SEQ_CLS LoRA adapter on it.

Writes, under peft-core/src/test/resources/fixtures/:

  decoder-cls/<family>.safetensors   for llama, mistral, qwen2, qwen3, gemma: the `score` weight [3, H] (normal(0, 0.5),
                  so that logits are not tiny), and for right padding and for left padding the input_ids / attention_mask
                  [3, 10] (pad id 3; the first row has no padding) with `XForSequenceClassification`'s logits [3, 3].
                  The weights are the tiny-<family> fixture's (mistral: tiny-llama's under decoder-cls/mistral/config.json,
                  a MistralConfig of tiny-llama's sizes). pad_token_id 3 is passed to from_pretrained.
  decoder-cls/mistral/config.json    the Mistral config (the weights are tiny-llama's model.safetensors).
  tiny-qwen3-tok/  a Qwen3ForCausalLM (hidden 32, 2 layers, 4 heads / 2 KV heads, head_dim 8, vocab 512, 128 positions,
                  tied embeddings) with a byte-level BPE tokenizer.json trained by `tokenizers` on the first 300 texts of
                  peft-bench/data/spam-assassin.jsonl (vocab 500, special tokens <|endoftext|> = pad, <|im_end|> = eos).
                  config.json: pad_token_id and eos_token_id set, as a Qwen checkpoint whose tokenizer pads.
  seq-cls-tiny-qwen3/  LoRA r=4, alpha=8 on q_proj, v_proj, task_type SEQ_CLS, Qwen3ForSequenceClassification (2 labels)
                  on tiny-qwen3-tok; the score saved (modules_to_save); golden.safetensors with right- and left-padded
                  input_ids / attention_mask and PEFT's logits for each.

Run from the repository root: /tmp/fixtures-venv/bin/python scripts/fixtures_decoder_cls.py
"""

import json
import os
import shutil

import peft
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "peft-core", "src", "test", "resources", "fixtures")
OUT = os.path.join(FIXTURES, "decoder-cls")
PAD = 3
META = {"format": "pt", "transformers": transformers.__version__, "peft": peft.__version__,
        "torch": torch.__version__}
KW = dict(attn_implementation="eager", dtype=torch.float32)

torch.set_num_threads(1)


def padded_batches(vocab, seq=10, lengths=(10, 7, 4)):
    """Right- and left-padded batches with the same real tokens; ids in [4, vocab) so none equals PAD."""
    g = torch.Generator().manual_seed(20)
    rows = [torch.randint(4, vocab, (n,), generator=g) for n in lengths]
    right = torch.full((len(rows), seq), PAD, dtype=torch.long)
    left = torch.full((len(rows), seq), PAD, dtype=torch.long)
    right_mask = torch.zeros_like(right)
    left_mask = torch.zeros_like(left)
    for i, r in enumerate(rows):
        right[i, :len(r)] = r
        right_mask[i, :len(r)] = 1
        left[i, seq - len(r):] = r
        left_mask[i, seq - len(r):] = 1
    return {"right_input_ids": right, "right_attention_mask": right_mask,
            "left_input_ids": left, "left_attention_mask": left_mask}


def logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits.float().contiguous()


def family(name, cls, path, config=None):
    torch.manual_seed(0)
    if config is None:
        model = cls.from_pretrained(path, num_labels=3, pad_token_id=PAD, **KW).eval()
    else:  # from_pretrained applies no keyword to a config given whole
        config.num_labels, config.pad_token_id = 3, PAD
        model = cls.from_pretrained(path, config=config, **KW).eval()
    with torch.no_grad():
        model.score.weight.normal_(0, 0.5)
    batches = padded_batches(model.config.vocab_size)
    tensors = dict(batches)
    tensors["score.weight"] = model.score.weight.detach().clone().contiguous()
    for side in ("right", "left"):
        tensors[side + "_logits"] = logits(model, batches[side + "_input_ids"], batches[side + "_attention_mask"])
    d = (tensors["right_logits"] - tensors["left_logits"]).abs().max().item()
    save_file(tensors, os.path.join(OUT, name + ".safetensors"), metadata=dict(META, pad_token_id=str(PAD)))
    print(f"[decoder-cls/{name}] {cls.__name__}: logits {tensors['right_logits'].abs().max().item():.3f}; "
          f"right vs left padding differ by {d:.2e} (positions shift under left padding)")


def make_families():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    family("llama", transformers.LlamaForSequenceClassification, os.path.join(FIXTURES, "tiny-llama"))
    family("qwen2", transformers.Qwen2ForSequenceClassification, os.path.join(FIXTURES, "tiny-qwen2"))
    family("qwen3", transformers.Qwen3ForSequenceClassification, os.path.join(FIXTURES, "tiny-qwen3"))
    family("gemma", transformers.GemmaForSequenceClassification, os.path.join(FIXTURES, "tiny-gemma"))
    llama = transformers.LlamaConfig.from_pretrained(os.path.join(FIXTURES, "tiny-llama"))
    mistral = transformers.MistralConfig(vocab_size=llama.vocab_size, hidden_size=llama.hidden_size,
                                         intermediate_size=llama.intermediate_size,
                                         num_hidden_layers=llama.num_hidden_layers,
                                         num_attention_heads=llama.num_attention_heads,
                                         num_key_value_heads=llama.num_key_value_heads,
                                         max_position_embeddings=llama.max_position_embeddings,
                                         rms_norm_eps=llama.rms_norm_eps, tie_word_embeddings=False,
                                         head_dim=llama.hidden_size // llama.num_attention_heads,
                                         architectures=["MistralForCausalLM"])
    os.makedirs(os.path.join(OUT, "mistral"))
    mistral.save_pretrained(os.path.join(OUT, "mistral"))  # before family() sets its labels and pad
    family("mistral", transformers.MistralForSequenceClassification, os.path.join(FIXTURES, "tiny-llama"), mistral)


def corpus(n=300):
    texts = []
    with open(os.path.join(REPO_ROOT, "peft-bench", "data", "spam-assassin.jsonl"), encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


def make_tiny_qwen3_tok():
    out = os.path.join(FIXTURES, "tiny-qwen3-tok")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=500, special_tokens=["<|endoftext|>", "<|im_end|>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
                                             show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.save(os.path.join(out, "tokenizer.json"))
    pad, eos = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")
    config = transformers.Qwen3Config(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                      max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=True,
                                      pad_token_id=pad, eos_token_id=eos, bos_token_id=None,
                                      architectures=["Qwen3ForCausalLM"])
    torch.manual_seed(0)
    model = transformers.Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0, 0.2)
    model.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    print(f"[tiny-qwen3-tok] vocab {tok.get_vocab_size()} tokens (pad {pad}, eos {eos}); files "
          f"{ {f: os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))} }")
    return out, pad


def make_seq_cls_qwen3(base, pad):
    out = os.path.join(FIXTURES, "seq-cls-tiny-qwen3")
    shutil.rmtree(out, ignore_errors=True)

    def task_model():
        torch.manual_seed(0)
        return transformers.Qwen3ForSequenceClassification.from_pretrained(base, num_labels=2, **KW).eval()

    config = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=False)
    model = peft.get_peft_model(task_model(), config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
            elif "score" in name:
                p.normal_(0, 0.5)
    batches = padded_batches(500)
    assert model.config.pad_token_id == pad, model.config.pad_token_id
    # the inputs pad with PAD (3); this model's pad is the tokenizer's <|endoftext|>: re-pad with it
    for side in ("right", "left"):
        ids = batches[side + "_input_ids"]
        batches[side + "_input_ids"] = torch.where(batches[side + "_attention_mask"] == 1, ids, pad)
    tensors = dict(batches)
    for side in ("right", "left"):
        tensors[side + "_logits"] = logits(model, batches[side + "_input_ids"], batches[side + "_attention_mask"])
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = "tiny-qwen3-tok"
    for field in ("target_modules", "modules_to_save"):
        if isinstance(adapter_config.get(field), list):
            adapter_config[field] = sorted(adapter_config[field])
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
    save_file(tensors, os.path.join(out, "golden.safetensors"), metadata=META)
    reloaded = peft.PeftModel.from_pretrained(task_model(), out).eval()
    d = (logits(reloaded, batches["right_input_ids"], batches["right_attention_mask"])
         - tensors["right_logits"]).abs().max().item()
    print(f"[seq-cls-tiny-qwen3] keys {sorted(load_file(os.path.join(out, 'adapter_model.safetensors')))}; "
          f"reload diff {d:.2e}")
    assert d < 1e-6


if __name__ == "__main__":
    make_families()
    base, pad = make_tiny_qwen3_tok()
    make_seq_cls_qwen3(base, pad)
