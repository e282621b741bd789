#!/usr/bin/env python3
"""Checks `gguf_dump --json` against gguf-py's GGUFReader, the reference reader.

usage: compare_gguf_py.py GGUF_PATH DUMP_JSON
Every metadata key and value (arrays complete, floats compared as float32/float64 exactly),
the version, alignment, data offset and every tensor (name, type, shape, absolute offset,
size) must agree. Prints one line per file; exit 1 on any difference.
"""
import json
import math
import struct
import sys

import gguf
import numpy as np


def same(ours, ref, vtype):
    if vtype == gguf.GGUFValueType.FLOAT32:
        return struct.pack("<f", ours) == struct.pack("<f", float(np.float32(ref))) or (
            math.isnan(ours) and math.isnan(ref))
    if vtype == gguf.GGUFValueType.FLOAT64:
        return ours == float(ref) or (math.isnan(ours) and math.isnan(ref))
    if vtype == gguf.GGUFValueType.BOOL:
        return bool(ours) == bool(ref)
    if vtype == gguf.GGUFValueType.STRING:
        return ours == ref  # both replace invalid UTF-8 with U+FFFD
    return int(ours) == int(ref)


def compare_value(key, ours, ref, types, errors):
    if types[0] == gguf.GGUFValueType.ARRAY:
        if not isinstance(ours, list) or len(ours) != len(ref):
            errors.append(f"{key}: array length {len(ours) if isinstance(ours, list) else '?'} != {len(ref)}")
            return
        for i, (a, b) in enumerate(zip(ours, ref)):
            if types[1] == gguf.GGUFValueType.ARRAY:
                errors.append(f"{key}: nested arrays are not compared by this tool")
                return
            if not same(a, b, types[1]):
                errors.append(f"{key}[{i}]: {a!r} != {b!r}")
                return
    elif not same(ours, ref, types[0]):
        errors.append(f"{key}: {ours!r} != {ref!r}")


def main():
    path, dump = sys.argv[1], sys.argv[2]
    with open(dump) as f:
        doc = json.load(f)
    reader = gguf.GGUFReader(path)
    errors = []
    fields = {k: v for k, v in reader.fields.items() if not k.startswith("GGUF.")}
    if doc["version"] != int(reader.fields["GGUF.version"].contents()):
        errors.append("version differs")
    if doc["alignment"] != reader.alignment:
        errors.append(f"alignment {doc['alignment']} != {reader.alignment}")
    if doc["data_offset"] != reader.data_offset:
        errors.append(f"data_offset {doc['data_offset']} != {reader.data_offset}")
    if list(doc["metadata"].keys()) != list(fields.keys()):
        errors.append(f"keys differ: {sorted(set(doc['metadata']) ^ set(fields))}")
    for key, field in fields.items():
        if key in doc["metadata"]:
            compare_value(key, doc["metadata"][key], field.contents(), field.types, errors)
    if len(doc["tensors"]) != len(reader.tensors):
        errors.append(f"tensor count {len(doc['tensors'])} != {len(reader.tensors)}")
    for ours, ref in zip(doc["tensors"], reader.tensors):
        want = {"name": ref.name, "type": ref.tensor_type.name, "shape": [int(x) for x in ref.shape],
                "offset": int(ref.data_offset), "size": int(ref.n_bytes)}
        got = {k: ours[k] for k in want}
        if got != want:
            errors.append(f"tensor {ref.name}: {got} != {want}")
    n_values = sum(len(f.contents()) if f.types[0] == gguf.GGUFValueType.ARRAY else 1
                   for f in fields.values())
    status = "OK" if not errors else "DIFF"
    print(f"{status} {path}: {len(fields)} keys ({n_values} values), {len(reader.tensors)} tensors")
    for e in errors[:20]:
        print("   ", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
