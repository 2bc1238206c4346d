#!/usr/bin/env bash
# The provkit story, end to end, on the built-in generator (no weights needed):
# a studio generates sealed images, a newsroom verifies and checks what arrives,
# a platform strips metadata and the credentials are recovered, and every policy
# decision lands in a tamper-evident log.
# Run by `make demo` (the venv on PATH, PROVKIT_HOME=demo-out/home).
set -euo pipefail
OUT=demo-out
rm -rf "$OUT"  # the story starts fresh each run (its workspace, demo-out/home, included)
mkdir -p "$OUT/archive"

step() { printf '\n== %s\n' "$*"; }

step "1. A signing identity (a development CA and an ES256 certificate)"
provkit keys show 2>/dev/null || provkit keys init --org "Demo Studio"

step "2. The studio generates two images with the built-in generator: each one leaves sealed"
provkit generate "a quiet harbour at dawn" -n 2 --seed 7 --size 512x512 -o "$OUT/generated" \
  --policy studio
GEN=$(ls "$OUT"/generated/*.png | head -1)

step "3. Anyone can verify the generated image: signer, source type, softwareAgent, do-not-train"
provkit verify "$GEN"

step "4. Detection: the evidence and the verdict it supports"
provkit detect "$GEN"

step "5. A newsroom photograph, signed at capture"
python - "$OUT/photo.jpg" "$OUT/archive" <<'PY'
import sys
from PIL import Image
from skimage import data
Image.fromarray(data.astronaut()).save(sys.argv[1], quality=92)
Image.fromarray(data.coffee()).save(sys.argv[2] + "/coffee.jpg", quality=92)
Image.fromarray(data.chelsea()).save(sys.argv[2] + "/chelsea.jpg", quality=92)
print("wrote", sys.argv[1])
PY
provkit sign "$OUT/photo.jpg" -o "$OUT/photo.signed.jpg" --source-type digitalCapture \
  --author "Demo Photographer" --no-train
provkit verify "$OUT/photo.signed.jpg"

step "6. Tamper with the pixels: verification fails and says why"
python - "$OUT/photo.signed.jpg" "$OUT/photo.tampered.jpg" <<'PY'
# paint over part of the picture and keep the signed manifest (the APP11 segments) in place
import io, sys
from PIL import Image, ImageDraw
data = open(sys.argv[1], "rb").read()
img = Image.open(io.BytesIO(data)).convert("RGB")
w, h = img.size
ImageDraw.Draw(img).rectangle([w // 10, h // 10, 7 * w // 10, 7 * h // 10], fill=(255, 0, 255))
buf = io.BytesIO()
img.save(buf, "JPEG", quality=92)
i = end = 2
while data[i] == 0xFF and data[i + 1] != 0xDA:  # the segments up to the last manifest one
    length = int.from_bytes(data[i + 2 : i + 4], "big")
    end = i + 2 + length if data[i + 1] == 0xEB else end
    i += 2 + length
open(sys.argv[2], "wb").write(data[:end] + buf.getvalue()[2:])
PY
provkit verify "$OUT/photo.tampered.jpg" || echo "(exit $? as expected: invalid)"

step "7. A platform strips the metadata, recompresses (q70) and halves it: the watermark recovers the credentials"
python - "$OUT/photo.signed.jpg" "$OUT/photo.shared.jpg" <<'PY'
import sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
img.resize((img.width // 2, img.height // 2)).save(sys.argv[2], quality=70)
PY
provkit verify "$OUT/photo.shared.jpg"
provkit recover "$OUT/photo.shared.jpg" -o "$OUT/photo.restored.jpg"
provkit verify "$OUT/photo.restored.jpg"

step "8. Has the newsroom seen this before? Put its archive in a bank, then look for near-duplicates"
provkit bank remove archive >/dev/null 2>&1 || true
provkit bank add archive "$OUT/archive" --label "photo archive"
python - "$OUT/archive/coffee.jpg" "$OUT/coffee.recycled.jpg" <<'PY'
import sys
from PIL import Image
img = Image.open(sys.argv[1])
w, h = img.size
img.crop((w // 20, h // 20, w - w // 20, h - h // 20)).resize((w // 2, h // 2)).save(sys.argv[2], quality=60)
PY
provkit dupes "$OUT/coffee.recycled.jpg" --bank archive

step "9. May we publish them? The newsroom policy decides, with reasons"
provkit policy check --pack newsroom --point publish "$GEN" "$OUT/photo.signed.jpg" \
  "$OUT/photo.tampered.jpg" || echo "(exit $?: at least one file was denied)"

step "10. Every decision is in the audit log, hash-chained"
provkit audit log --limit 5
provkit audit verify

step "11. The ledger of issued assets"
provkit ledger list --limit 6

step "12. The same verify over HTTP: provkit serve on loopback, one request, then stop"
PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN_NAME="demo-$$"
TOKEN=$(provkit tokens create "$TOKEN_NAME" --scope read | head -1)
provkit serve --port "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
python - "$PORT" "$TOKEN" "$OUT/photo.signed.jpg" <<'PY'
import sys, time
import httpx
port, token, path = sys.argv[1:]
url = f"http://127.0.0.1:{port}"
for _ in range(300):
    try:
        if httpx.get(url + "/status", timeout=2).status_code == 200:
            break
    except httpx.TransportError:
        pass
    time.sleep(0.2)
with open(path, "rb") as f:
    r = httpx.post(url + "/v1/verify", headers={"Authorization": f"Bearer {token}"},
                   files=[("files", ("photo.signed.jpg", f.read(), "image/jpeg"))], timeout=60)
r.raise_for_status()
row = r.json()[0]
print(f"POST {url}/v1/verify -> {r.status_code}: {row['path']}: {row['c2pa']['state'].upper()}, "
      f"signer {row['c2pa']['signer']['common_name']}")
assert row["c2pa"]["state"] in ("valid", "trusted"), row
PY
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
trap - EXIT
provkit tokens revoke "$TOKEN_NAME" >/dev/null
echo "server stopped; token $TOKEN_NAME revoked"
