#!/usr/bin/env python3
"""Writes malformed variants of a GGUF file and checks that a tool rejects each cleanly.

usage: malformed_variants.py MODEL.gguf OUT_DIR [TOOL ...]
Each variant is one structural lie (truncation, bad magic/version, absurd counts and
lengths, unknown types, overflowing dims, offsets past the end, misaligned or overlapping
tensors, duplicate names). With TOOL given (e.g. `build/bin/gguf_dump`), runs TOOL VARIANT
for each and requires exit code 1, a stderr line starting with `error:`, no signal, within
10 s. Prints one line per variant, then `N passed, N failed`.
"""
import os
import struct
import subprocess
import sys


def walk(data):
    """Offsets of every header field: kv (key_off, type_off, value_off), tensor infos."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    kvs, tensors = [], []

    def skip_value(p, t):
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if t in sizes:
            return p + sizes[t]
        if t == 8:
            (n,) = struct.unpack_from("<Q", data, p)
            return p + 8 + n
        et, n = struct.unpack_from("<IQ", data, p)
        p += 12
        for _ in range(n):
            p = skip_value(p, et)
        return p

    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", data, pos)
        key = data[pos + 8:pos + 8 + klen].decode()
        type_off = pos + 8 + klen
        (t,) = struct.unpack_from("<I", data, type_off)
        kvs.append({"key": key, "off": pos, "type_off": type_off, "type": t, "value_off": type_off + 4})
        pos = skip_value(type_off + 4, t)
    for _ in range(n_tensors):
        (nlen,) = struct.unpack_from("<Q", data, pos)
        name = data[pos + 8:pos + 8 + nlen].decode()
        p = pos + 8 + nlen
        (n_dims,) = struct.unpack_from("<I", data, p)
        dims_off = p + 4
        type_off = dims_off + 8 * n_dims
        offset_off = type_off + 4
        tensors.append({"name": name, "off": pos, "n_dims_off": p, "dims_off": dims_off,
                        "n_dims": n_dims, "type_off": type_off, "offset_off": offset_off})
        pos = offset_off + 8
    return kvs, tensors, pos


def patch(data, off, fmt, value):
    out = bytearray(data)
    struct.pack_into(fmt, out, off, value)
    return bytes(out)


def variants(data):
    kvs, tensors, header_end = walk(data)
    size = len(data)
    v = []
    for cut in [0, 3, 4, 7, 8, 15, 16, 23, 24, 30, kvs[1]["value_off"], kvs[-1]["value_off"] + 2,
                tensors[0]["off"] + 5, tensors[-1]["offset_off"] + 3, header_end, header_end + 7,
                size // 2, size - 1]:
        v.append((f"truncated-at-{cut}", data[:cut]))
    v.append(("bad-magic", patch(data, 0, "<I", 0x46554746)))
    v.append(("version-0", patch(data, 4, "<I", 0)))
    v.append(("version-1", patch(data, 4, "<I", 1)))
    v.append(("version-4", patch(data, 4, "<I", 4)))
    v.append(("big-endian", patch(data, 4, "<I", 0x03000000)))
    v.append(("tensor-count-huge", patch(data, 8, "<Q", 1 << 62)))
    v.append(("tensor-count-plus-one", patch(data, 8, "<Q", len(tensors) + 1)))
    v.append(("kv-count-huge", patch(data, 16, "<Q", (1 << 64) - 1)))
    v.append(("kv-count-plus-one", patch(data, 16, "<Q", len(kvs) + 1)))
    v.append(("key-length-huge", patch(data, kvs[0]["off"], "<Q", 1 << 60)))
    v.append(("key-length-past-end", patch(data, kvs[2]["off"], "<Q", size)))
    v.append(("key-length-zero", patch(data, kvs[0]["off"], "<Q", 0)))
    v.append(("value-type-13", patch(data, kvs[1]["type_off"], "<I", 13)))
    v.append(("value-type-max", patch(data, kvs[3]["type_off"], "<I", 0xFFFFFFFF)))
    arrays = [k for k in kvs if k["type"] == 9]
    strings = [k for k in kvs if k["type"] == 8]
    v.append(("array-count-huge", patch(data, arrays[0]["value_off"] + 4, "<Q", 1 << 61)))
    v.append(("array-count-past-end", patch(data, arrays[0]["value_off"] + 4, "<Q", size)))
    v.append(("array-element-type-bad", patch(data, arrays[0]["value_off"], "<I", 77)))
    v.append(("array-first-string-huge", patch(data, arrays[0]["value_off"] + 12, "<Q", 1 << 55)))
    v.append(("string-value-huge", patch(data, strings[0]["value_off"], "<Q", (1 << 64) - 1)))
    dup = bytearray(data)
    k0, k1 = kvs[0]["key"].encode(), kvs[1]["key"].encode()
    if len(k0) == len(k1):
        dup[kvs[1]["off"] + 8:kvs[1]["off"] + 8 + len(k1)] = k0
    else:  # make key 1 a copy of itself: find another key of the same length
        same = [k for k in kvs[1:] if len(k["key"]) == len(k0)]
        dup[same[0]["off"] + 8:same[0]["off"] + 8 + len(k0)] = k0
    v.append(("duplicate-key", bytes(dup)))
    t0, t1, tl = tensors[0], tensors[1], tensors[-1]
    v.append(("n-dims-5", patch(data, t0["n_dims_off"], "<I", 5)))
    v.append(("n-dims-huge", patch(data, t1["n_dims_off"], "<I", 0xFFFFFFFF)))
    v.append(("dim-huge", patch(data, t0["dims_off"], "<Q", 1 << 63)))
    v.append(("dims-overflow", patch(patch(data, t0["dims_off"], "<Q", 1 << 40),
                                     t0["dims_off"] + 8, "<Q", 1 << 40)))
    v.append(("dim-too-large-for-file", patch(data, tl["dims_off"] + 8, "<Q", 1 << 30)))
    quantized = next(t for t in tensors if struct.unpack_from("<I", data, t["type_off"])[0]
                     not in (0, 1, 24, 25, 26, 27, 28, 30))  # not F32/F16/I*/F64/BF16
    v.append(("dim-not-block-multiple", patch(data, quantized["dims_off"], "<Q", 100)))
    v.append(("type-removed-4", patch(data, t0["type_off"], "<I", 4)))
    v.append(("type-removed-31", patch(data, t1["type_off"], "<I", 31)))
    v.append(("type-unknown-999", patch(data, tl["type_off"], "<I", 999)))
    v.append(("type-grows-past-end", patch(data, tl["type_off"], "<I", 28)))  # F64: 8 bytes/value
    v.append(("offset-past-end", patch(data, tl["offset_off"], "<Q", size)))
    v.append(("offset-huge", patch(data, t0["offset_off"], "<Q", (1 << 64) - 32)))
    v.append(("offset-misaligned", patch(data, t1["offset_off"], "<Q",
                                         struct.unpack_from("<Q", data, t1["offset_off"])[0] + 1)))
    v.append(("offset-overlap", patch(data, t1["offset_off"], "<Q",
                                      struct.unpack_from("<Q", data, t0["offset_off"])[0])))
    v.append(("name-length-huge", patch(data, t0["off"], "<Q", 1 << 50)))
    v.append(("name-length-zero", patch(data, t1["off"], "<Q", 0)))
    a, b = next((a, b) for i, a in enumerate(tensors) for b in tensors[i + 1:]
                if len(a["name"]) == len(b["name"]))
    dupt = bytearray(data)
    dupt[b["off"] + 8:b["off"] + 8 + len(a["name"])] = a["name"].encode()
    v.append(("duplicate-tensor-name", bytes(dupt)))
    v.append(("alignment-zero", add_alignment(data, kvs, 0)))
    v.append(("alignment-not-power-of-two", add_alignment(data, kvs, 48)))
    v.append(("empty-file", b""))
    v.append(("only-magic", data[:4]))
    v.append(("zeros", bytes(4096)))
    return v


def add_alignment(data, kvs, value):
    """Turns the first UINT32 metadata value into general.alignment = value: rewrite its key."""
    u32 = [k for k in kvs if k["type"] == 4][0]
    key = b"general.alignment"
    head = data[:u32["off"]]
    tail = data[u32["value_off"] + 4:]
    entry = struct.pack("<Q", len(key)) + key + struct.pack("<II", 4, value)
    return head + entry + tail


def main():
    model, out_dir = sys.argv[1], sys.argv[2]
    tool = sys.argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    data = open(model, "rb").read()
    passed = failed = 0
    for name, blob in variants(data):
        path = os.path.join(out_dir, name + ".gguf")
        with open(path, "wb") as f:
            f.write(blob)
        if not tool:
            continue
        try:
            r = subprocess.run(tool + [path], capture_output=True, timeout=10)
            err = r.stderr.decode(errors="replace")
            ok = r.returncode == 1 and any(l.startswith("error:") for l in err.splitlines())
            detail = f"rc={r.returncode} {err.strip().splitlines()[-1] if err.strip() else '(no stderr)'}"
        except subprocess.TimeoutExpired:
            ok, detail = False, "timed out"
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail[:160]}")
        passed += ok
        failed += not ok
        os.remove(path)
    if tool:
        print(f"{passed} passed, {failed} failed")
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
