#!/usr/bin/env python3
"""Golden VeRA and FourierFT adapters saved by Hugging Face PEFT, for peft4j's adapter-file tests.

Writes, under peft-core/src/test/resources/fixtures/:

  vera-tiny-llama/       VeRA r=8 on q_proj, v_proj and down_proj of tiny-llama (so the shared projections are
                         sliced: max in 128, max out 64), projection_prng_key=17, save_projection=True; the lambda
                         vectors moved off their init (b ~ N(0, 0.5), d ~ 0.1 + N(0, 0.3)) so that the update matters.
  fourierft-tiny-llama/  FourierFT n_frequency=40, scaling=150, random_loc_seed=123 on q_proj and v_proj; the spectrum
                         drawn from N(0, 1) (init_weights=False, HF's default).

Each holds adapter_config.json + adapter_model.safetensors exactly as PeftModel.save_pretrained writes them, and
golden.safetensors with the adapted model's logits on tiny-llama's golden inputs. For VeRA it also stores the
projections torch draws from seed 17 with no file (`vera_A_from_seed`, `vera_B_from_seed`: they equal the saved ones),
and for FourierFT the indices torch's randperm chose per module (`indices.<module>`, int64 [2, n]), so that peft4j's
reproduction of torch's generator is tested bit for bit.

`--check DIR` loads an adapter written by peft4j on tiny-llama with PeftModel.from_pretrained and prints the logits'
max difference from DIR/golden.safetensors (written by peft4j's test).

Run from the repository root after scripts/make_fixtures.py (it reads tiny-llama):
    python scripts/fixtures_vera.py
"""

import argparse
import os
import sys

import peft
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_adapter_fixtures as base  # noqa: E402  (helpers: FIXTURES, BASE, make, check)


def perturb(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "vera_lambda_b" in name:
                p.normal_(0, 0.5)
            elif "vera_lambda_d" in name:
                p.normal_(0, 0.3).add_(0.1)


def extra_vera(out):
    from peft.tuners.vera.model import _kaiming_init
    g = torch.Generator(device="cpu").manual_seed(17)
    a = _kaiming_init((8, 128), generator=g)
    b = _kaiming_init((64, 8), generator=g)
    saved = load_file(os.path.join(out, "adapter_model.safetensors"))
    assert torch.equal(saved["base_model.vera_A"], a) and torch.equal(saved["base_model.vera_B"], b)
    golden = load_file(os.path.join(out, "golden.safetensors"))
    golden["vera_A_from_seed"] = a
    golden["vera_B_from_seed"] = b
    return golden


def extra_fourierft(out):
    base_model = base.transformers.LlamaForCausalLM.from_pretrained(base.BASE, dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base_model, out)
    golden = load_file(os.path.join(out, "golden.safetensors"))
    for name, module in model.named_modules():
        if hasattr(module, "indices") and "default" in getattr(module, "indices", {}):
            golden["indices." + name.removeprefix("base_model.model.")] = module.indices["default"].contiguous()
    return golden


def make(tag, config, extra):
    """base.make (save, golden logits, reload check), with VeRA's vectors moved off their init first."""
    torch.manual_seed(0)
    original = peft.get_peft_model

    def get_peft_model(model, cfg):  # base.make perturbs only LoRA and IA³ weights
        m = original(model, cfg)
        if cfg.peft_type == peft.PeftType.VERA:
            perturb(m)
        return m

    peft.get_peft_model = get_peft_model
    try:
        base.make(tag, config)
    finally:
        peft.get_peft_model = original
    out = os.path.join(base.FIXTURES, tag)
    golden = extra(out)
    save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(out, "golden.safetensors"),
              metadata={"format": "pt", "peft": peft.__version__, "transformers": base.transformers.__version__})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", help="an adapter directory written by peft4j, with its golden.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        base.check(args.check)
        return
    make("vera-tiny-llama", peft.VeraConfig(r=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                            projection_prng_key=17, save_projection=True), extra_vera)
    make("fourierft-tiny-llama", peft.FourierFTConfig(n_frequency=40, scaling=150.0, random_loc_seed=123,
                                                      target_modules=["q_proj", "v_proj"]), extra_fourierft)


if __name__ == "__main__":
    main()
