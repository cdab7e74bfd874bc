"""Golden values for peft4j's NF4 / double-quantisation codec (dev.peft4j.quant).

bitsandbytes is not installable here (no CUDA, no wheel in the venv), so this script restates, in plain torch,
the reference ("default" backend) algorithm of bitsandbytes: quantize_4bit(quant_type="nf4", blocksize=64) and
quantize_blockwise(absmax - mean, code=create_dynamic_map(), blocksize=256) for compress_statistics=True.
It also prints create_dynamic_map() (signed, 8 bits) as the Java table in dev.peft4j.quant.Codes.

Run: /tmp/fixtures-venv/bin/python scripts/fixtures_qlora.py
Writes peft-core/src/test/resources/fixtures/qlora/nf4_golden.json
"""
import json
import os
import sys

import torch

NF4 = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=torch.float32)


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map, restated."""
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def quantize_blockwise(a, code, blocksize):
    """bitsandbytes default backend quantize_blockwise: per-block absmax, argmin over the code."""
    n = a.numel()
    rem = n % blocksize
    blocks = n // blocksize + (rem > 0)
    absmax = torch.zeros((blocks,), dtype=torch.float32)
    flat = a.reshape(n)
    full = flat[: n - rem].reshape(n // blocksize, blocksize)
    absmax[: n // blocksize] = full.abs().max(dim=-1)[0]
    scaled = torch.clamp(full * (1 / absmax[: n // blocksize].view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        absmax[-1] = flat[n - rem:].abs().max()
        scaled = torch.cat([scaled, torch.clamp(flat[n - rem:] * (1 / absmax[-1]), -1, 1)])
    out = torch.argmin((scaled.unsqueeze(-1) - code).abs(), dim=-1).to(torch.uint8)
    return out, absmax


def quantize_nf4(a, blocksize=64):
    """bitsandbytes default backend quantize_4bit(quant_type='nf4'): codes packed two per byte, first in the high nibble."""
    n = a.numel()
    rem = n % blocksize
    full_blocks = n // blocksize
    blocks = full_blocks + (1 if rem else 0)
    absmax = torch.zeros((blocks,), dtype=torch.float32)
    flat = a.reshape(n)
    full = flat[: n - rem].reshape(full_blocks, blocksize)
    absmax[:full_blocks] = full.abs().max(dim=-1)[0]
    scaled = torch.clamp(full * (1 / absmax[:full_blocks].view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        absmax[-1] = flat[-rem:].abs().max()
        scaled = torch.cat([scaled, torch.clamp(flat[-rem:] * (1 / absmax[-1]), -1, 1)])
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1), value=0.0)
    q = torch.argmin((scaled.view(-1, 1) - NF4).abs(), dim=-1).to(torch.uint8)
    packed = q[::2] << 4 | q[1::2]
    return packed, absmax


def dequantize_nf4(packed, absmax, n, blocksize=64):
    q = torch.empty(packed.numel() * 2, dtype=torch.int64)
    q[::2] = (packed >> 4).long()
    q[1::2] = (packed & 0xF).long()
    vals = NF4[q][:n]
    rem = n % blocksize
    out = torch.empty(n, dtype=torch.float32)
    out[: n - rem] = (vals[: n - rem].view(-1, blocksize) * absmax[: n // blocksize].view(-1, 1)).reshape(-1)
    if rem:
        out[n - rem:] = vals[n - rem:] * absmax[-1]
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = create_dynamic_map()
    print("dynamic map (Java):")
    print(", ".join(repr(float(v)) + "f" for v in code.tolist()))

    torch.manual_seed(1234)
    w = torch.round(torch.randn(40, 41) * 32) / 256          # 1,640 values: 25 full blocks of 64 + 40
    packed, absmax = quantize_nf4(w)
    small = torch.round(torch.randn(7, 13) * 64) / 64        # 91 values: a block of 64, one of 27, an odd count
    small_packed, small_absmax = quantize_nf4(small)
    # double quantisation on its own: what quantize_4bit(compress_statistics=True) does to 300 absmax values
    stats = torch.round(torch.rand(300) * 1024 + 64) / 4096
    offset = stats.mean()
    qstats, stats2 = quantize_blockwise(stats - offset, code, 256)
    deq = torch.cat([code[qstats[i * 256:(i + 1) * 256].long()] * stats2[i] for i in range(stats2.numel())]) + offset
    golden = {
        "source": "scripts/fixtures_qlora.py: bitsandbytes' default-backend NF4 algorithm restated in torch "
                  + torch.__version__,
        "dynamic_map": code.tolist(),
        "w_shape": list(w.shape),
        "w": w.reshape(-1).tolist(),
        "packed": packed.tolist(),
        "absmax": absmax.tolist(),
        "small_shape": list(small.shape),
        "small": small.reshape(-1).tolist(),
        "small_packed": small_packed.tolist(),
        "small_absmax": small_absmax.tolist(),
        "stats": stats.tolist(),
        "stats_offset": float(offset),
        "stats_q": qstats.tolist(),
        "stats_absmax": stats2.tolist(),
        "stats_dequantized": deq.tolist(),
    }
    out = os.path.join(root, "peft-core/src/test/resources/fixtures/qlora/nf4_golden.json")
    with open(out, "w") as f:
        json.dump(golden, f)
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()
