"""What a manifest says about the app or device that made it, and about the capture.

:func:`claim_generator` reads the claim generator of any vendor (``claim_generator_info``
of v2 claims, the ``claim_generator`` text of v1 ones) as short names such as
"Truepic Lens SDK 3.2.1". :func:`capture_details` reads the camera, capture time and
location a signer put into the manifest itself (``stds.exif``, ``c2pa.metadata``,
``stds.iptc``); only what was signed is reported, never the file's unsigned EXIF.
"""

from __future__ import annotations

#: Assertions that may carry EXIF fields (with or without the ``exif:`` prefix).
EXIF_ASSERTIONS = ("stds.exif", "c2pa.metadata", "stds.iptc", "stds.iptc.photo-metadata")

#: Longest text kept from one field (a hostile manifest may carry anything).
MAX_TEXT = 200


def _text(value) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:MAX_TEXT] or None


def claim_generator(manifest: dict) -> list[str]:
    """The app or device that wrote the claim, as "name version" strings."""
    out = []
    for info in manifest.get("claim_generator_info") or []:
        if not isinstance(info, dict):
            continue
        name = " ".join(t for t in (_text(info.get("name")), _text(info.get("version"))) if t)
        if name and name not in out:
            out.append(name)
    if not out:
        legacy = _text(manifest.get("claim_generator"))
        if legacy:  # v1: "Vendor_App/1.2 c2pa-rs/0.x": the first token names the app
            first = legacy.split()[0].replace("_", " ").replace("/", " ")
            out.append(first)
    return out


def _fields(manifest: dict) -> dict:
    """Every signed EXIF-like field of the manifest, keyed without its prefix."""
    out: dict = {}
    for a in manifest.get("assertions") or []:
        label = str(a.get("label", "")).split("__")[0]
        data = a.get("data")
        if label not in EXIF_ASSERTIONS or not isinstance(data, dict):
            continue
        for key, value in data.items():
            if key.startswith("@"):
                continue
            short = key.split(":", 1)[-1]
            out.setdefault(short, value)
    return out


def _location(f: dict) -> str | None:
    lat, lon = _text(f.get("GPSLatitude")), _text(f.get("GPSLongitude"))
    if lat and lon:
        text = f"{lat}, {lon}"
        alt = _text(f.get("GPSAltitude"))
        return f"{text} (altitude {alt})" if alt else text
    named = [_text(f.get(k)) for k in ("Sublocation", "City", "ProvinceState", "CountryName")]
    named = [n for n in named if n]
    return ", ".join(named) or None


def capture_details(manifest: dict) -> dict | None:
    """``{"device", "lens", "time", "location"}`` from the signed assertions (only the
    keys the signer included; None when it included none)."""
    f = _fields(manifest)
    make, model = _text(f.get("Make")), _text(f.get("Model"))
    if make and model and model.lower().startswith(make.lower()):
        make = None
    device = " ".join(t for t in (make, model) if t) or None
    details = {
        "device": device,
        "lens": _text(f.get("LensModel")),
        "time": _text(
            f.get("DateTimeOriginal") or f.get("DateTimeDigitized") or f.get("DateCreated")
        ),
        "location": _location(f),
    }
    details = {k: v for k, v in details.items() if v}
    return details or None
