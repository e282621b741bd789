#!/usr/bin/env python3
"""Quant golden vectors in the format of ../shared/quant/quant-golden.gguf.

For each ggml type T: tensor `T.q` (ROWS rows of COLS values in type T: random valid
blocks), `T.deq` (T.q dequantized to F32 by gguf-py's gguf.quants.dequantize, the numpy
mirror of ggml's dequantize_row_*), `T.y` (T.deq times the F32 vector `x`, accumulated in
float64, stored F32), plus `x` itself.

Random blocks: every quant bit pattern is valid (grid indices span their grids exactly), so
blocks are random bytes with the scale fields overwritten by moderate values, which keeps
the dequantized values finite and O(1).

  make_quant_golden.py --out FILE [--types Q4_K,IQ2_XXS,...|all] [--skip-unsupported]
  make_quant_golden.py --check-shared ../shared/quant/quant-golden.gguf

--check-shared proves the shared file was made the same way: gguf-py's dequantization of
every shared T.q equals T.deq exactly, and T.deq · x (float64) equals T.y as stored.
"""
import argparse
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def set_f16(blocks, offset, rng, lo, hi, signed=False):
    v = rng.uniform(lo, hi, size=blocks.shape[0])
    if signed:
        v *= rng.choice([-1.0, 1.0], size=blocks.shape[0])
    blocks[:, offset:offset + 2] = f16_bytes(v)


# type -> [(byte offset of an f16 scale, low, high, signed)]: the scale ranges keep
# |value| below about 16 (the largest quant × sub-scale of the type sets the divisor).
F16_SCALES = {
    Q.Q4_0: [(0, 0.25 / 8, 1 / 8, True)],
    Q.Q4_1: [(0, 0.25 / 15, 1 / 15, False), (2, -1, 0, False)],
    Q.Q5_0: [(0, 0.25 / 16, 1 / 16, True)],
    Q.Q5_1: [(0, 0.25 / 31, 1 / 31, False), (2, -1, 0, False)],
    Q.Q8_0: [(0, 0.25 / 127, 1 / 127, True)],
    Q.Q2_K: [(80, 0.25 / 45, 1 / 45, False), (82, 0, 1 / 15, False)],
    Q.Q3_K: [(108, 0.25 / 128, 1 / 128, False)],
    Q.Q4_K: [(0, 0.25 / 945, 1 / 945, False), (2, 0, 1 / 63, False)],
    Q.Q5_K: [(0, 0.25 / 1953, 1 / 1953, False), (2, 0, 1 / 63, False)],
    Q.Q6_K: [(208, 0.25 / 4096, 1 / 4096, False)],
    Q.IQ4_NL: [(0, 0.25 / 127, 1 / 127, False)],
    Q.IQ4_XS: [(0, 0.25 / 4064, 1 / 4064, False)],
    Q.TQ1_0: [(52, 0.25, 1, False)],
    Q.TQ2_0: [(64, 0.25, 1, False)],
    Q.IQ2_XXS: [(0, 0.25 / 167, 1 / 167, False)],
    Q.IQ2_XS: [(0, 0.25 / 167, 1 / 167, False)],
    Q.IQ2_S: [(0, 0.25 / 167, 1 / 167, False)],
    Q.IQ3_XXS: [(0, 0.25 / 480, 1 / 480, False)],
    Q.IQ3_S: [(0, 0.25 / 465, 1 / 465, False)],
    Q.IQ1_S: [(0, 0.25 / 17, 1 / 17, False)],
}


def random_blocks(qtype, n_values, rng):
    """Valid random blocks of qtype holding n_values values, as a uint8 array."""
    if qtype in (Q.F32, Q.F16, Q.BF16):
        v = rng.uniform(-1, 1, size=n_values).astype(np.float32)
        if qtype == Q.F32:
            return v.view(np.uint8)
        if qtype == Q.F16:
            return v.astype(np.float16).view(np.uint8)
        return gguf.quants.quantize(v, Q.BF16).view(np.uint8)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_values // block_size, type_size), dtype=np.uint8)
    for offset, lo, hi, signed in F16_SCALES.get(qtype, []):
        set_f16(blocks, offset, rng, lo, hi, signed)
    if qtype == Q.TQ2_0:  # codes 0..2 only (3 decodes to +2d, which the quantizer never writes)
        codes = rng.integers(0, 3, size=(blocks.shape[0], 64, 4), dtype=np.uint8)
        blocks[:, :64] = codes[..., 0] | codes[..., 1] << 2 | codes[..., 2] << 4 | codes[..., 3] << 6
    elif qtype == Q.MXFP4:  # e8m0 exponent: 2^(e-128) in [2^-5, 1]
        blocks[:, 0] = rng.integers(123, 129, size=blocks.shape[0])
    elif qtype == Q.NVFP4:  # ue4m3 sub-block scales with exponent 3..7: at most ~1
        blocks[:, :4] = rng.integers(3, 8, size=(blocks.shape[0], 4)) << 3 | rng.integers(0, 8, size=(blocks.shape[0], 4))
    elif qtype == Q.IQ1_M:  # the f16 d is split over the top nibbles of the 4 u16 scales
        d = f16_bytes(rng.uniform(0.25 / 17, 1 / 17, size=blocks.shape[0])).view(np.uint16).reshape(-1)
        scales = blocks[:, 48:56].copy().view(np.uint16)
        for i in range(4):
            scales[:, i] = (scales[:, i] & 0x0FFF) | (((d >> (4 * i)) & 0xF) << 12)
        blocks[:, 48:56] = scales.view(np.uint8)
    return blocks.reshape(-1)


def dequantize(raw, qtype, rows, cols):
    return gguf.quants.dequantize(raw.reshape(rows, -1), qtype).reshape(rows, cols).astype(np.float32)


def can_dequantize(qtype):
    probe = random_blocks(qtype, 256, np.random.default_rng(0))  # 256: a multiple of every block size
    try:
        dequantize(probe, qtype, 1, 256)
        return True
    except (NotImplementedError, KeyError, ValueError):
        return False


def make(out, type_names, rows, cols, seed, skip_unsupported):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=cols).astype(np.float32)
    writer = gguf.GGUFWriter(out, "quant-golden")
    writer.add_tensor("x", x)
    for name in type_names:
        qtype = Q[name]
        if not can_dequantize(qtype):
            if skip_unsupported:
                print(f"skip {name}: gguf-py cannot dequantize it", file=sys.stderr)
                continue
            sys.exit(f"error: gguf-py cannot dequantize {name}")
        raw = random_blocks(qtype, rows * cols, rng)
        deq = dequantize(raw, qtype, rows, cols)
        if not np.all(np.isfinite(deq)):
            sys.exit(f"error: {name}: non-finite dequantized values")
        y = (deq.astype(np.float64) @ x.astype(np.float64)).astype(np.float32)
        writer.add_tensor(f"{name}.q", raw.reshape(rows, -1), raw_dtype=qtype)
        writer.add_tensor(f"{name}.deq", deq)
        writer.add_tensor(f"{name}.y", y)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def check_shared(path):
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    x = np.array(tensors["x"].data, dtype=np.float32)
    failures = 0
    for t in reader.tensors:
        if not t.name.endswith(".q"):
            continue
        name = t.name[:-2]
        rows = int(np.prod(t.shape[1:]))
        cols = int(t.shape[0])
        deq = dequantize(np.ascontiguousarray(t.data).view(np.uint8).reshape(-1), t.tensor_type, rows, cols)
        deq_ref = np.array(tensors[f"{name}.deq"].data, dtype=np.float32).reshape(rows, cols)
        y_ref = np.array(tensors[f"{name}.y"].data, dtype=np.float32)
        y = (deq_ref.astype(np.float64) @ x.astype(np.float64)).astype(np.float32)
        same_deq = np.array_equal(deq.view(np.uint32), deq_ref.view(np.uint32))
        same_y = np.array_equal(y, y_ref)
        print(f"{name}: deq {'equal' if same_deq else 'DIFFERS'}, y {'equal' if same_y else 'DIFFERS'}")
        failures += (not same_deq) + (not same_y)
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out")
    p.add_argument("--types", default="all", help="comma-separated ggml type names, or 'all'")
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--cols", type=int, default=768)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-unsupported", action="store_true",
                   help="leave out types gguf-py cannot dequantize instead of failing")
    p.add_argument("--check-shared", metavar="GGUF")
    args = p.parse_args()
    if args.check_shared:
        sys.exit(1 if check_shared(args.check_shared) else 0)
    if not args.out:
        p.error("--out or --check-shared is required")
    if args.types == "all":
        names = [q.name for q in Q if q in GGML_QUANT_SIZES and can_dequantize(q)]
    else:
        names = args.types.split(",")
    for name in names:
        if name not in Q.__members__:
            p.error(f"unknown ggml type {name}")
        if args.cols % GGML_QUANT_SIZES[Q[name]][0]:
            p.error(f"--cols {args.cols} is not a multiple of the {name} block size")
    make(args.out, names, args.rows, args.cols, args.seed, args.skip_unsupported)


if __name__ == "__main__":
    main()
