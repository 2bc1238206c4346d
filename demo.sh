#!/usr/bin/env bash
# The provkit story, end to end: an identity, a signed image, its verification.
# Run by `make demo` (the venv on PATH, PROVKIT_HOME=demo-out/home).
set -euo pipefail
OUT=demo-out
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

step "1. A signing identity (a development CA and an ES256 certificate)"
provkit keys show 2>/dev/null || provkit keys init --org "Demo Newsroom"

step "2. A photograph to publish"
python - "$OUT/photo.jpg" <<'PY'
import sys
from PIL import Image
from skimage import data
Image.fromarray(data.astronaut()).save(sys.argv[1], quality=92)
print("wrote", sys.argv[1])
PY

step "3. Sign it: watermark the asset id, attach a C2PA manifest, record it"
WM=--watermark
python -c "import provenance.watermark as w; w.embed" 2>/dev/null || WM=--no-watermark
provkit sign "$OUT/photo.jpg" -o "$OUT/photo.signed.jpg" --source-type digitalCapture \
  --author "Demo Photographer" --no-train "$WM"

step "4. Verify it (this workspace trusts its own development CA)"
provkit verify "$OUT/photo.signed.jpg"

step "5. Tamper with the pixels: verification fails and says why"
python - "$OUT/photo.signed.jpg" "$OUT/photo.tampered.jpg" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[-2000] ^= 0x55
open(sys.argv[2], "wb").write(bytes(data))
PY
provkit verify "$OUT/photo.tampered.jpg" || echo "(exit $? as expected: invalid)"

step "6. A platform strips the metadata, recompresses (q70) and halves it"
python - "$OUT/photo.signed.jpg" "$OUT/photo.shared.jpg" <<'PY'
import sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
img.resize((img.width // 2, img.height // 2)).save(sys.argv[2], quality=70)
PY
provkit verify "$OUT/photo.shared.jpg"

step "7. Re-attach the recovered credentials"
provkit recover "$OUT/photo.shared.jpg" -o "$OUT/photo.restored.jpg"
provkit verify "$OUT/photo.restored.jpg"

step "8. The ledger"
provkit ledger list
