#!/usr/bin/env python3
"""Generate the golden test fixtures for peft4j from the Hugging Face reference code.

Writes, under peft-core/src/test/resources/fixtures/:

  tiny-llama/  LlamaForCausalLM  (config.json, model.safetensors, golden.safetensors)
  tiny-qwen3/  Qwen3ForCausalLM  (tied lm_head; falls back to Qwen2 if Qwen3 is missing)
  tiny-bert/   BertModel         (no pooler; SHARDED: model.safetensors.index.json + shards)
  tiny-qwen2/  Qwen2ForCausalLM  (q/k/v biases, untied lm_head)

Every model is float32, built right after torch.manual_seed(0), re-initialised so that
no weight is tiny or zero, run in eval() mode with attn_implementation="eager".
After saving, each model is loaded back with from_pretrained and re-run to check that the
files on disk reproduce the golden outputs.

Usage (see scripts/README.md):
    python scripts/make_fixtures.py [--out DIR]
"""

import argparse
import json
import os
import shutil
import struct
import sys

import safetensors
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "peft-core", "src", "test", "resources", "fixtures")

SEQ_LEN = 10
REAL_LENGTHS = [10, 7, 4]  # right padding with id 0
PAD_ID = 0
INPUT_SEED = 1234
TOL = 1e-6

VERSIONS = {
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "safetensors": safetensors.__version__,
}


# --------------------------------------------------------------------------- inputs

def make_inputs():
    """input_ids/attention_mask [3, 10] int64; right-padded with PAD_ID=0."""
    g = torch.Generator().manual_seed(INPUT_SEED)
    ids = torch.randint(1, 128, (len(REAL_LENGTHS), SEQ_LEN), generator=g, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(REAL_LENGTHS):
        mask[b, :n] = 1
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, PAD_ID))
    return ids.contiguous(), mask.contiguous()


# --------------------------------------------------------------------------- re-init

def is_norm_module(m):
    name = type(m).__name__
    return "RMSNorm" in name or isinstance(m, torch.nn.LayerNorm) or name.endswith("LayerNorm")


@torch.no_grad()
def reinit_(model):
    """normal(0, 0.2) everywhere; norm weights 1 + 0.1*randn; biases 0.1*randn.

    Goes module by module in a fixed order (named_modules, then their direct
    parameters) so the result depends only on the seed.  Tied parameters are
    visited once.
    """
    seen = set()
    for _, module in model.named_modules():
        norm = is_norm_module(module)
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if norm and pname == "weight":
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif pname == "bias":
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2)
    n_params = sum(1 for _ in model.parameters())
    assert len(seen) == n_params, (len(seen), n_params)


# --------------------------------------------------------------------------- helpers

def clean_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def golden_metadata(extra=None):
    md = {"format": "pt", "torch": VERSIONS["torch"], "transformers": VERSIONS["transformers"],
          "safetensors": VERSIONS["safetensors"]}
    if extra:
        md.update({k: str(v) for k, v in extra.items()})
    return md


def save_golden(tensors, path, metadata):
    """save_file, then rewrite the header with the metadata keys sorted.

    safetensors writes __metadata__ from a hash map, so its key order (and the file's
    bytes) would change from run to run; sorting keeps re-generation byte-identical.
    """
    save_file(tensors, path, metadata=metadata)
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        md = header.pop("__metadata__")
        canon = json.dumps({"__metadata__": dict(sorted(md.items())), **header},
                           separators=(",", ":")).encode("utf-8")
        assert len(canon) <= n, (len(canon), n)
        f.seek(8)
        f.write(canon + b" " * (n - len(canon)))
    with safe_open(path, framework="pt") as f:  # still a valid file
        assert f.metadata() == md and sorted(f.keys()) == sorted(tensors)


def saved_tensor_names(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    names = []
    if os.path.exists(idx):
        with open(idx) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        files = ["model.safetensors"]
    for fn in files:
        with safe_open(os.path.join(model_dir, fn), framework="pt") as f:
            names.extend(f.keys())
    return sorted(names), files


def max_abs_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def report_model_dir(tag, model_dir):
    names, files = saved_tensor_names(model_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    print(f"[{tag}] weight files: {files}")
    print(f"[{tag}] {len(names)} tensors; first few: {names[:4]}")
    print(f"[{tag}] config.json keys: {sorted(cfg.keys())}")
    return names


# --------------------------------------------------------------------------- decoders

DECODER_DIMS = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    hidden_act="silu",
)


def run_decoder(model, ids, mask):
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    return out, labels, loss


def build_decoder_fixture(tag, out_dir, model_cls, config):
    model_dir = os.path.join(out_dir, tag)
    clean_dir(model_dir)
    print(f"\n=== {tag}: {model_cls.__name__} (transformers {VERSIONS['transformers']}) ===")

    torch.manual_seed(0)
    model = model_cls(config)
    reinit_(model)
    model = model.float().eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation

    ids, mask = make_inputs()
    out, labels, loss = run_decoder(model, ids, mask)
    logits = out.logits.detach().float().contiguous()
    assert logits.shape == (3, SEQ_LEN, config.vocab_size), logits.shape

    # Independent check of the loss semantics (shift by one, ignore -100, mean over valid).
    shift_logits = logits[:, :-1, :].reshape(-1, config.vocab_size)
    shift_labels = labels[:, 1:].reshape(-1)
    ref_loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100)
    assert abs(ref_loss.item() - loss.item()) < 1e-5, (ref_loss.item(), loss.item())

    model.save_pretrained(model_dir, safe_serialization=True)

    golden = {
        "input_ids": ids,
        "attention_mask": mask,
        "logits": logits,
        "loss_labels": labels.contiguous(),
        "loss": loss.detach().float().reshape(()).contiguous(),
    }
    # Extra (debug aid): output of the embedding (index 0) and of every decoder layer;
    # the last one is the final-norm output ("last_hidden_state"), as HF reports it.
    for i, h in enumerate(out.hidden_states):
        golden[f"hidden_states.{i}"] = h.detach().float().clone().contiguous()
    save_golden(golden, os.path.join(model_dir, "golden.safetensors"),
                metadata=golden_metadata({"model_class": model_cls.__name__,
                                          "padding_side": "right", "pad_token_id": PAD_ID,
                                          "hidden_states_count": len(out.hidden_states)}))

    names = report_model_dir(tag, model_dir)
    print(f"[{tag}] tied lm_head: {config.tie_word_embeddings}; 'lm_head.weight' in file: "
          f"{'lm_head.weight' in names}")
    print(f"[{tag}] loss = {loss.item():.6f}; max|logits| = {logits.abs().max().item():.4f}; "
          f"std(logits) = {logits.std().item():.4f}")

    # Round trip through the files on disk.
    reloaded = model_cls.from_pretrained(model_dir, attn_implementation="eager",
                                         dtype=torch.float32).eval()
    out2, _, loss2 = run_decoder(reloaded, ids, mask)
    d = max_abs_diff(out2.logits, logits)
    dl = abs(loss2.item() - loss.item())
    print(f"[{tag}] reload: max|dlogits| = {d:.3e}, |dloss| = {dl:.3e}")
    assert d < TOL and dl < TOL, (d, dl)
    return model_dir


def tiny_llama(out_dir):
    cfg = transformers.LlamaConfig(tie_word_embeddings=False, attn_implementation="eager",
                                   **DECODER_DIMS)
    return build_decoder_fixture("tiny-llama", out_dir, transformers.LlamaForCausalLM, cfg)


def tiny_qwen3(out_dir):
    if hasattr(transformers, "Qwen3ForCausalLM"):
        cfg_cls, model_cls = transformers.Qwen3Config, transformers.Qwen3ForCausalLM
    else:
        print("WARNING: this transformers has no Qwen3; using Qwen2 instead", file=sys.stderr)
        cfg_cls, model_cls = transformers.Qwen2Config, transformers.Qwen2ForCausalLM
    extra = {"head_dim": 16} if model_cls.__name__.startswith("Qwen3") else {}
    cfg = cfg_cls(tie_word_embeddings=True, attn_implementation="eager", **extra, **DECODER_DIMS)
    return build_decoder_fixture("tiny-qwen3", out_dir, model_cls, cfg)


def tiny_qwen2(out_dir):
    """Qwen2: q/k/v projections WITH biases (the qkv-bias path), untied lm_head."""
    cfg = transformers.Qwen2Config(tie_word_embeddings=False, attn_implementation="eager", **DECODER_DIMS)
    return build_decoder_fixture("tiny-qwen2", out_dir, transformers.Qwen2ForCausalLM, cfg)


# --------------------------------------------------------------------------- bert

def bert_inputs():
    ids, mask = make_inputs()
    tt = torch.zeros_like(ids)
    tt[0, 5:10] = 1
    return ids, mask, tt


def tiny_bert(out_dir):
    tag = "tiny-bert"
    model_dir = os.path.join(out_dir, tag)
    clean_dir(model_dir)
    print(f"\n=== {tag}: BertModel (transformers {VERSIONS['transformers']}) ===")
    cfg = transformers.BertConfig(
        vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, attn_implementation="eager")

    torch.manual_seed(0)
    model = transformers.BertModel(cfg, add_pooling_layer=False)
    reinit_(model)
    model = model.float().eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation

    ids, mask, tt = bert_inputs()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=tt,
                    output_hidden_states=True)
    last = out.last_hidden_state.detach().float().contiguous()
    assert last.shape == (3, SEQ_LEN, 32), last.shape

    model.save_pretrained(model_dir, safe_serialization=True, max_shard_size="20KB")

    golden = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": tt.contiguous(),
        "last_hidden_state": last,
    }
    # Extra (debug aid): embeddings output (after LayerNorm) and every encoder layer output.
    for i, h in enumerate(out.hidden_states):
        golden[f"hidden_states.{i}"] = h.detach().float().clone().contiguous()
    save_golden(golden, os.path.join(model_dir, "golden.safetensors"),
                metadata=golden_metadata({"model_class": "BertModel", "add_pooling_layer": False,
                                          "padding_side": "right", "pad_token_id": PAD_ID,
                                          "hidden_states_count": len(out.hidden_states)}))

    names = report_model_dir(tag, model_dir)
    assert os.path.exists(os.path.join(model_dir, "model.safetensors.index.json")), "not sharded"
    prefixed = [n for n in names if n.startswith("bert.")]
    print(f"[{tag}] names with 'bert.' prefix: {len(prefixed)} of {len(names)}")
    print(f"[{tag}] max|last_hidden_state| = {last.abs().max().item():.4f}; "
          f"std = {last.std().item():.4f}")

    reloaded = transformers.BertModel.from_pretrained(
        model_dir, add_pooling_layer=False, attn_implementation="eager",
        dtype=torch.float32).eval()
    with torch.no_grad():
        last2 = reloaded(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    d = max_abs_diff(last2, last)
    print(f"[{tag}] reload: max|dlast_hidden_state| = {d:.3e}")
    assert d < TOL, d
    return model_dir



# --------------------------------------------------------------------------- more architectures (issue 19)
#
# RoBERTa / XLM-R, DistilBERT and GPT-2 at BERT-fixture sizes.  RoBERTa's inputs avoid its pad id (1) in real
# tokens, so HF's position ids (padding_idx + 1 + cumsum of real tokens; padding_idx on padding) are exercised.

ENCODER_DIMS = dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, hidden_act="gelu", attn_implementation="eager")


def roberta_inputs(pad_id):
    ids, mask = make_inputs()
    ids = torch.where(ids == pad_id, torch.full_like(ids, 2), ids)     # real tokens never carry the pad id
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad_id))
    return ids.contiguous(), mask


def build_encoder_fixture(tag, out_dir, model, inputs, output_name, extra_md):
    """Saves model (already re-initialised), golden outputs for inputs, checks the reload."""
    model_dir = os.path.join(out_dir, tag)
    clean_dir(model_dir)
    print(f"\n=== {tag}: {type(model).__name__} (transformers {VERSIONS['transformers']}) ===")
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    main = getattr(out, output_name).detach().float().contiguous()
    model.save_pretrained(model_dir, safe_serialization=True)
    golden = {k: v.contiguous() for k, v in inputs.items()}
    golden[output_name] = main
    for i, h in enumerate(out.hidden_states):
        golden[f"hidden_states.{i}"] = h.detach().float().clone().contiguous()
    save_golden(golden, os.path.join(model_dir, "golden.safetensors"),
                metadata=golden_metadata({"model_class": type(model).__name__, "padding_side": "right",
                                          "hidden_states_count": len(out.hidden_states), **extra_md}))
    report_model_dir(tag, model_dir)
    print(f"[{tag}] max|{output_name}| = {main.abs().max().item():.4f}; std = {main.std().item():.4f}")
    kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in extra_md else {}
    reloaded = type(model).from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32,
                                           **kwargs).eval()
    with torch.no_grad():
        d = max_abs_diff(getattr(reloaded(**inputs), output_name), main)
    print(f"[{tag}] reload: max|d{output_name}| = {d:.3e}")
    assert d < TOL, d
    return model_dir


def fresh(model_cls, cfg, **kwargs):
    torch.manual_seed(0)
    model = model_cls(cfg, **kwargs)
    reinit_(model)
    model = model.float().eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    return model


def tiny_roberta(out_dir):
    """RobertaModel without pooler; pad id 1, 66 positions (64 + padding_idx + 1), one token type."""
    cfg = transformers.RobertaConfig(max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                                     layer_norm_eps=1e-5, **ENCODER_DIMS)
    ids, mask = roberta_inputs(1)
    return build_encoder_fixture("tiny-roberta", out_dir,
                                 fresh(transformers.RobertaModel, cfg, add_pooling_layer=False),
                                 {"input_ids": ids, "attention_mask": mask}, "last_hidden_state",
                                 {"add_pooling_layer": False, "pad_token_id": 1})


def tiny_xlm_roberta(out_dir):
    """XLMRobertaForSequenceClassification (3 labels): RoBERTa's graph under model_type xlm-roberta, names
    'roberta.…', and the classification head classifier.dense + tanh + classifier.out_proj on the <s> token."""
    cfg = transformers.XLMRobertaConfig(max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                                        layer_norm_eps=1e-5, num_labels=3, **ENCODER_DIMS)
    ids, mask = roberta_inputs(1)
    return build_encoder_fixture("tiny-xlm-roberta", out_dir,
                                 fresh(transformers.XLMRobertaForSequenceClassification, cfg),
                                 {"input_ids": ids, "attention_mask": mask}, "logits", {"pad_token_id": 1})


def tiny_distilbert(out_dir):
    """DistilBertModel: learned positions, no token types, exact GELU."""
    cfg = transformers.DistilBertConfig(vocab_size=128, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                        max_position_embeddings=64, activation="gelu", pad_token_id=0,
                                        attn_implementation="eager")
    ids, mask = make_inputs()
    return build_encoder_fixture("tiny-distilbert", out_dir, fresh(transformers.DistilBertModel, cfg),
                                 {"input_ids": ids, "attention_mask": mask}, "last_hidden_state",
                                 {"pad_token_id": PAD_ID})


def tiny_gpt2(out_dir):
    """GPT2LMHeadModel: Conv1D weights stored [in, out], fused c_attn, gelu_new, tied lm_head, 64 positions."""
    cfg = transformers.GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=127,
                                  eos_token_id=127,
                                  activation_function="gelu_new", layer_norm_epsilon=1e-5,
                                  attn_implementation="eager")
    ids, mask = make_inputs()
    labels = ids.masked_fill(mask == 0, -100)
    model = fresh(transformers.GPT2LMHeadModel, cfg)
    model_dir = build_encoder_fixture("tiny-gpt2", out_dir, model, {"input_ids": ids, "attention_mask": mask},
                                      "logits", {"pad_token_id": PAD_ID})
    with torch.no_grad():  # the loss too, as for the other decoders (golden rewritten with it)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    from safetensors.torch import load_file
    golden_path = os.path.join(model_dir, "golden.safetensors")
    golden = load_file(golden_path)
    with safe_open(golden_path, framework="pt") as f:
        md = f.metadata()
    golden["loss_labels"] = labels.contiguous()
    golden["loss"] = loss.detach().float().reshape(()).contiguous()
    save_golden(golden, golden_path, md)
    print(f"[tiny-gpt2] loss = {loss.item():.6f}")
    return model_dir


def tiny_gemma(out_dir):
    """GemmaForCausalLM: tiny-llama's dims but hidden 32 / MLP 64 (the fixtures stay under 2 MB), head_dim 16 (so
    nh·d = 64 ≠ H), RMSNorm scaling by (1 + w), embeddings times sqrt(H), GELU-tanh gated MLP, tied lm_head. Norm
    weights are re-initialised around 1 like the others', so 1 + w ~ 2."""
    dims = {k: v for k, v in DECODER_DIMS.items() if k != "hidden_act"}
    dims.update(hidden_size=32, intermediate_size=64)
    cfg = transformers.GemmaConfig(head_dim=16, hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True,
                                   attn_implementation="eager", bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                   **dims)
    return build_decoder_fixture("tiny-gemma", out_dir, transformers.GemmaForCausalLM, cfg)


# --------------------------------------------------------------------------- independent check
#
# A plain float64 numpy re-implementation that reads ONLY the files written to disk
# (config.json, weights, golden.safetensors).  It pins down the exact math the Java code
# must follow, and shows the tolerance a float32 re-implementation can expect (~1e-5).

REF_TOL = 1e-4


def _np_load_weights(model_dir):
    from safetensors.numpy import load_file
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(idx):
        return load_file(os.path.join(model_dir, "model.safetensors"))
    w = {}
    with open(idx) as f:
        for fn in sorted(set(json.load(f)["weight_map"].values())):
            w.update(load_file(os.path.join(model_dir, fn)))
    return w


def _np_softmax_masked(s, allowed):
    import numpy as np
    s = np.where(allowed, s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    return s / s.sum(-1, keepdims=True)


def ref_check_decoder(model_dir, qk_norm):
    """Llama / Qwen3 decoder: pre-norm RMSNorm blocks, GQA, RoPE (rotate_half), SwiGLU."""
    import numpy as np
    from safetensors.numpy import load_file
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    w = {k: v.astype(np.float64) for k, v in _np_load_weights(model_dir).items()}
    g = load_file(os.path.join(model_dir, "golden.safetensors"))
    n_h, n_kv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps, theta = c["rms_norm_eps"], c["rope_parameters"]["rope_theta"]
    emb = w["model.embed_tokens.weight"]
    lm_head = w.get("lm_head.weight", emb)  # tied: lm_head.weight is not in the file

    def rms(x, weight):
        return weight * x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)

    def rope(x, pos):  # x [T, heads, hd]; halves rotated (rotate_half), not interleaved pairs
        inv = 1.0 / (theta ** (np.arange(0, hd, 2) / hd))
        ang = np.concatenate([np.outer(pos, inv)] * 2, -1)[:, None, :]
        rot = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], -1)
        return x * np.cos(ang) + rot * np.sin(ang)

    ids, mask = g["input_ids"], g["attention_mask"]
    B, T = ids.shape
    logits = np.zeros(g["logits"].shape)
    err_h = 0.0
    for b in range(B):
        pos = np.arange(T)  # position ids are 0..T-1 whatever the mask (right padding)
        # query t may see key s iff s <= t and key s is a real token (padded queries too)
        allowed = (np.tril(np.ones((T, T), bool)) & (mask[b][None, :] == 1))[None]
        x = emb[ids[b]]
        hs = [x]
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = rms(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, n_h, hd)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, n_kv, hd)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, n_kv, hd)
            if qk_norm:  # Qwen3: per-head RMSNorm over head_dim, BEFORE RoPE
                q = rms(q, w[p + "self_attn.q_norm.weight"])
                k = rms(k, w[p + "self_attn.k_norm.weight"])
            q, k = rope(q, pos), rope(k, pos)
            k = np.repeat(k, n_h // n_kv, axis=1)  # query head j uses kv head j // (n_h/n_kv)
            v = np.repeat(v, n_h // n_kv, axis=1)
            a = _np_softmax_masked(np.einsum("thd,shd->hts", q, k) / np.sqrt(hd), allowed)
            x = x + np.einsum("hts,shd->thd", a, v).reshape(T, n_h * hd) @ w[p + "self_attn.o_proj.weight"].T
            h = rms(x, w[p + "post_attention_layernorm.weight"])
            gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
            hs.append(x)
        x = rms(x, w["model.norm.weight"])
        hs[-1] = x  # HF's last hidden_states entry is AFTER the final norm
        logits[b] = x @ lm_head.T
        for i, hh in enumerate(hs):
            err_h = max(err_h, np.abs(hh - g[f"hidden_states.{i}"][b]).max())
    # next-token CE: logits[:, t] predicts labels[:, t+1]; -100 ignored; mean over the rest
    labels, nll = g["loss_labels"], []
    for b in range(B):
        for t in range(T - 1):
            y = labels[b, t + 1]
            if y != -100:
                z = logits[b, t]
                nll.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[y])
    err_l = np.abs(logits - g["logits"]).max()
    err_loss = abs(float(np.mean(nll)) - float(g["loss"]))
    print(f"[{os.path.basename(model_dir)}] numpy reference: max|dlogits| = {err_l:.2e}, "
          f"max|dhidden| = {err_h:.2e}, |dloss| = {err_loss:.2e}")
    assert max(err_l, err_h, err_loss) < REF_TOL


def ref_check_bert(model_dir):
    """BERT encoder: post-LN blocks, exact (erf) GELU, key-padding mask only."""
    import numpy as np
    from math import erf
    from safetensors.numpy import load_file
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    w = {k: v.astype(np.float64) for k, v in _np_load_weights(model_dir).items()}
    g = load_file(os.path.join(model_dir, "golden.safetensors"))
    n_h = c["num_attention_heads"]
    hd = c["hidden_size"] // n_h
    eps = c["layer_norm_eps"]
    gelu = np.vectorize(lambda v: 0.5 * v * (1.0 + erf(v / np.sqrt(2.0))))

    def ln(x, pfx):
        m = x.mean(-1, keepdims=True)
        var = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(var + eps) * w[pfx + ".weight"] + w[pfx + ".bias"]

    ids, mask, tt = g["input_ids"], g["attention_mask"], g["token_type_ids"]
    B, T = ids.shape
    out = np.zeros(g["last_hidden_state"].shape)
    err_h = 0.0
    for b in range(B):
        e = "embeddings."
        x = (w[e + "word_embeddings.weight"][ids[b]] + w[e + "position_embeddings.weight"][:T]
             + w[e + "token_type_embeddings.weight"][tt[b]])
        x = ln(x, e + "LayerNorm")
        hs = [x]
        allowed = (mask[b] == 1)[None, None, :]  # every query (padded ones too) sees real keys
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(name, z):
                return z @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin("attention.self.query", x).reshape(T, n_h, hd)
            k = lin("attention.self.key", x).reshape(T, n_h, hd)
            v = lin("attention.self.value", x).reshape(T, n_h, hd)
            a = _np_softmax_masked(np.einsum("thd,shd->hts", q, k) / np.sqrt(hd), allowed)
            a = np.einsum("hts,shd->thd", a, v).reshape(T, n_h * hd)
            x = ln(x + lin("attention.output.dense", a), p + "attention.output.LayerNorm")
            x = ln(x + lin("output.dense", gelu(lin("intermediate.dense", x))), p + "output.LayerNorm")
            hs.append(x)
        out[b] = x
        for i, hh in enumerate(hs):
            err_h = max(err_h, np.abs(hh - g[f"hidden_states.{i}"][b]).max())
    err = np.abs(out - g["last_hidden_state"]).max()
    print(f"[{os.path.basename(model_dir)}] numpy reference: max|dlast_hidden_state| = {err:.2e}, "
          f"max|dhidden| = {err_h:.2e}")
    assert max(err, err_h) < REF_TOL


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="fixtures root (default: %(default)s)")
    ap.add_argument("--only-archs", action="store_true",
                    help="write only tiny-roberta, tiny-xlm-roberta, tiny-distilbert, tiny-gpt2 and tiny-gemma")
    args = ap.parse_args()

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)  # fewer sources of run-to-run variation in the reductions
    print("versions:", VERSIONS)
    os.makedirs(args.out, exist_ok=True)
    archs = [tiny_roberta(args.out), tiny_xlm_roberta(args.out), tiny_distilbert(args.out), tiny_gpt2(args.out),
             tiny_gemma(args.out)]
    if args.only_archs:
        return
    dirs = [tiny_llama(args.out), tiny_qwen3(args.out), tiny_bert(args.out), tiny_qwen2(args.out)]

    print("\n=== independent numpy re-implementation vs golden ===")
    ref_check_decoder(dirs[0], qk_norm=False)
    if hasattr(transformers, "Qwen3ForCausalLM"):  # (the Qwen2 fallback has q/k/v biases)
        ref_check_decoder(dirs[1], qk_norm=True)
    ref_check_bert(dirs[2])

    print("\n=== sizes ===")
    total = 0
    for d in dirs + archs:
        for fn in sorted(os.listdir(d)):
            sz = os.path.getsize(os.path.join(d, fn))
            total += sz
            print(f"{sz:>9,d}  {os.path.relpath(os.path.join(d, fn), args.out)}")
    print(f"{total:>9,d}  total ({total / 1024 / 1024:.3f} MiB)")
    assert total < 2 * 1024 * 1024, "fixtures exceed 2 MB"


if __name__ == "__main__":
    main()
