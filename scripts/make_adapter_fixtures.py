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

Task adapters (`--tasks` writes only these), as `get_peft_model(..., task_type=...)` saves them:

  tiny-bert-cls/          the task checkpoint: BertForSequenceClassification (3 labels) with tiny-bert's sizes, with
                          its pooler, saved as one model.safetensors (names bert.…, classifier.…); golden logits.
  seq-cls-tiny-bert/      LoRA r=4, alpha=8, target_modules="all-linear", task_type SEQ_CLS on tiny-bert-cls: PEFT
                          expands all-linear to every linear layer but the classifier (bert.pooler.dense included) and
                          saves the classifier (modules_to_save ["classifier", "score"]); golden logits [3, 3].
  token-cls-tiny-bert/    LoRA r=4 on query, value, task_type TOKEN_CLS, BertForTokenClassification on tiny-bert-cls
                          (no pooler); golden logits [3, 10, 3].
  seq-cls-tiny-llama/     LoRA r=4 on q_proj, v_proj, task_type SEQ_CLS, LlamaForSequenceClassification (2 labels,
                          pad_token_id 0) on tiny-llama; the new `score` saved; golden logits [3, 2].
  lora-all-linear-tiny-bert/  LoRA all-linear on BertModel with its pooler (from tiny-bert-cls), no task type:
                          pooler.dense adapted; golden last_hidden_state and pooler_output.
  seq-cls-tiny-xlm-roberta/  LoRA r=4, alpha=8 on query, value, task_type SEQ_CLS on tiny-xlm-roberta
                          (XLMRobertaForSequenceClassification, 3 labels): keys roberta.…, the classifier saved whole
                          (classifier.dense and classifier.out_proj); golden logits [3, 3]. `--only` writes just it.

Also checks an adapter written by peft4j when given one: `--check DIR` loads DIR with PeftModel.from_pretrained
(on tiny-llama for a plain adapter, on `--base tiny-gpt2` for a GPT-2 one; on the task model of its task_type, built from the fixture its
base_model_name_or_path names, for SEQ_CLS / TOKEN_CLS) and prints the logits' max difference from
DIR/golden.safetensors (written by peft4j's test).

Run from the repository root after scripts/make_fixtures.py (it reads tiny-llama and tiny-bert):
    python scripts/make_adapter_fixtures.py            # everything
    python scripts/make_adapter_fixtures.py --tasks    # the task fixtures only
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


BERT_CLS = "tiny-bert-cls"
TASKS = {"SEQ_CLS": "seq", "TOKEN_CLS": "token"}


def task_model(base_name, task_type, num_labels=None):
    """The HF task model peft4j's task graph stands for, from a committed fixture."""
    path = os.path.join(FIXTURES, base_name)
    kind = json.load(open(os.path.join(path, "config.json")))["model_type"]
    kw = dict(attn_implementation="eager", dtype=torch.float32)
    if kind == "bert":
        cls = (transformers.BertForSequenceClassification if task_type == "SEQ_CLS"
               else transformers.BertForTokenClassification)
        return cls.from_pretrained(path, **kw).eval()
    if kind in ("roberta", "xlm-roberta"):  # the checkpoint has its head (classifier.dense, classifier.out_proj)
        return transformers.AutoModelForSequenceClassification.from_pretrained(path, **kw).eval()
    # decoders: a new score head, pad_token_id 0 (the golden inputs are right-padded with 0)
    torch.manual_seed(0)
    return transformers.LlamaForSequenceClassification.from_pretrained(path, num_labels=num_labels or 2,
                                                                       pad_token_id=0, **kw).eval()


def task_logits(model, golden):
    inputs = {k: golden[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in golden}
    with torch.no_grad():
        return model(**inputs).logits.float()


def tidy_config(out, base_name):
    os.remove(os.path.join(out, "README.md"))
    with open(os.path.join(out, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = base_name
    for field in ("target_modules", "modules_to_save"):
        if isinstance(adapter_config.get(field), list):
            adapter_config[field] = sorted(adapter_config[field])
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)


def make_bert_cls():
    """The BERT task checkpoint: tiny-bert's sizes, a pooler and a 3-label classifier, every weight moved off init."""
    out = os.path.join(FIXTURES, BERT_CLS)
    shutil.rmtree(out, ignore_errors=True)
    config = transformers.BertConfig.from_pretrained(os.path.join(FIXTURES, "tiny-bert"))
    config.num_labels = 3
    config.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.normal_(0, 0.2)
    model.save_pretrained(out, safe_serialization=True)
    golden = load_file(os.path.join(FIXTURES, "tiny-bert", "golden.safetensors"))
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "token_type_ids": golden["token_type_ids"], "logits": task_logits(model, golden).contiguous()},
              os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "transformers": transformers.__version__})
    print(f"[{BERT_CLS}] files: {sorted(os.listdir(out))}")


def make_task(tag, base_name, config, num_labels=None):
    out = os.path.join(FIXTURES, tag)
    shutil.rmtree(out, ignore_errors=True)
    model = task_model(base_name, config.task_type, num_labels)
    golden = load_file(os.path.join(FIXTURES, "tiny-bert" if base_name == BERT_CLS else base_name,
                                    "golden.safetensors"))
    base_logits = task_logits(model, golden)
    model = peft.get_peft_model(model, config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    logits = task_logits(model, golden)
    model.save_pretrained(out)
    tidy_config(out, base_name)
    tensors = {k: golden[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in golden}
    tensors["logits"] = logits.contiguous()
    save_file(tensors, os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    reloaded = peft.PeftModel.from_pretrained(task_model(base_name, config.task_type, num_labels), out).eval()
    d = (task_logits(reloaded, golden) - logits).abs().max().item()
    print(f"[{tag}] keys: {sorted(load_file(os.path.join(out, 'adapter_model.safetensors')))[:3]}…; "
          f"reload diff {d:.2e}; adapter moves logits by {(logits - base_logits).abs().max().item():.3f}")
    assert d < 1e-6


def make_bert_all_linear(tag):
    """all-linear LoRA on a BertModel with its pooler (no task type): PEFT adapts pooler.dense too."""
    out = os.path.join(FIXTURES, tag)
    shutil.rmtree(out, ignore_errors=True)
    base = transformers.BertModel.from_pretrained(os.path.join(FIXTURES, BERT_CLS), attn_implementation="eager",
                                                  dtype=torch.float32).eval()
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                      init_lora_weights=False)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    golden = load_file(os.path.join(FIXTURES, "tiny-bert", "golden.safetensors"))
    with torch.no_grad():
        result = model(input_ids=golden["input_ids"], attention_mask=golden["attention_mask"],
                       token_type_ids=golden["token_type_ids"])
    model.save_pretrained(out)
    tidy_config(out, BERT_CLS)
    save_file({"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"],
               "token_type_ids": golden["token_type_ids"],
               "last_hidden_state": result.last_hidden_state.float().contiguous(),
               "pooler_output": result.pooler_output.float().contiguous()},
              os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": transformers.__version__})
    keys = sorted(k for k in load_file(os.path.join(out, "adapter_model.safetensors")) if "pooler" in k)
    print(f"[{tag}] pooler keys: {keys}")
    assert keys


def check_task(adapter_dir, adapter_config):
    golden = load_file(os.path.join(adapter_dir, "golden.safetensors"))
    num_labels = golden["logits"].shape[-1]
    base = task_model(adapter_config["base_model_name_or_path"], adapter_config["task_type"], num_labels)
    model = peft.PeftModel.from_pretrained(base, adapter_dir).eval()
    d = (task_logits(model, golden) - golden["logits"]).abs().max().item()
    print(f"HF PEFT {peft.__version__} loaded {adapter_dir} ({adapter_config['task_type']} on "
          f"{type(base).__name__}): max |logits - peft4j's| = {d:.2e}")
    assert d < 1e-4, d


def make_tasks():
    make_bert_cls()
    make_task("seq-cls-tiny-bert", BERT_CLS, peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8,
                                                            target_modules="all-linear", init_lora_weights=False))
    make_task("token-cls-tiny-bert", BERT_CLS, peft.LoraConfig(task_type="TOKEN_CLS", r=4, lora_alpha=8,
                                                              target_modules=["query", "value"],
                                                              init_lora_weights=False))
    make_task("seq-cls-tiny-llama", "tiny-llama", peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8,
                                                                 target_modules=["q_proj", "v_proj"],
                                                                 init_lora_weights=False), num_labels=2)
    make_bert_all_linear("lora-all-linear-tiny-bert")
    make_roberta_seq_cls()


def make_roberta_seq_cls():
    """SEQ_CLS on XLM-RoBERTa: keys roberta.…, the two-linear classifier (dense, out_proj) saved whole."""
    make_task("seq-cls-tiny-xlm-roberta", "tiny-xlm-roberta",
              peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"],
                              init_lora_weights=False))


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
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    if adapter_config.get("task_type") in TASKS:
        check_task(adapter_dir, adapter_config)
        return
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
    ap.add_argument("--tasks", action="store_true", help="write only the task fixtures (SEQ_CLS, TOKEN_CLS, pooler)")
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
    if args.only == "seq-cls-tiny-xlm-roberta":
        make_roberta_seq_cls()
        return
    if args.tasks:
        make_tasks()
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
    make_tasks()


if __name__ == "__main__":
    main()
