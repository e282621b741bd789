#!/usr/bin/env python3
"""Turns bench_matmul / bench_copy JSON lines into the markdown tables of bench/README.md.

usage: table.py MATMUL.jsonl COPY.jsonl

Lines from `bench_matmul --matvec-config ...` carry a "config" (ML_MATVEC: staged,workgroup,
rows,groups[,cap]); the matvec table then shows the config libml picks for that type and
shape (vec_config in libml/src/ops/matmul.cpp, mirrored by chosen() below).
"""
import json
import sys


def chosen(type_name, m):
    if type_name in ("F32", "F16", "BF16"):
        return "1,64,1,2,0" if m >= 65536 else "0,0,2,0,0"
    if type_name in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "MXFP4", "IQ4_NL"):
        return "0,0,4,0,0"
    if type_name in ("Q5_1", "Q3_K", "Q4_K", "Q5_K", "Q6_K"):
        return "1,128,1,2,0"
    return "0,0,2,0,0"


def main():
    rows = [json.loads(l) for l in open(sys.argv[1])]
    copy = [json.loads(l) for l in open(sys.argv[2])]
    ceiling = max(c["GB/s"] for c in copy if c["test"] == "copy_kernel")
    print("| test | bytes | ms | GB/s (read + write) |\n|---|---:|---:|---:|")
    for c in copy:
        print(f"| {c['test']} | {c['bytes']} | {c['ms']:.3f} | {c['GB/s']:.0f} |")
    shapes = sorted({(r["m"], r["k"]) for r in rows}, key=lambda s: (s[0] * s[1], s))
    print("\nOne token (matvec): GB/s of weights read, and % of the copy kernel's "
          f"{ceiling:.0f} GB/s.\n")
    print("| type | " + " | ".join(f"{m}×{k}" for m, k in shapes) + " |")
    print("|---|" + "---:|" * len(shapes))
    types = list(dict.fromkeys(r["type"] for r in rows))
    for t in types:
        cells = []
        for m, k in shapes:
            r = [x for x in rows if x["type"] == t and (x["m"], x["k"]) == (m, k) and x["test"] == "matvec"
                 and x.get("config", chosen(t, m)) == chosen(t, m)]
            cells.append(f"{r[0]['GB/s']:.0f} ({100 * r[0]['GB/s'] / ceiling:.0f}%)" if r else "—")
        print(f"| {t} | " + " | ".join(cells) + " |")
    tiled = [r for r in rows if r["test"] == "matmul_tiled"]
    if tiled:
        n = tiled[0]["n"]
        print(f"\n{n} tokens (tiled matmul): TFLOP/s.\n")
        print("| type | " + " | ".join(f"{m}×{k}" for m, k in shapes) + " |")
        print("|---|" + "---:|" * len(shapes))
        for t in types:
            cells = []
            for m, k in shapes:
                r = [x for x in tiled if x["type"] == t and (x["m"], x["k"]) == (m, k)]
                cells.append(f"{r[0]['TFLOP/s']:.1f}" if r else "—")
            print(f"| {t} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
