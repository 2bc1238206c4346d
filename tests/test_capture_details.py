"""The app or device that produced a file (claim generator info of any vendor) and the
capture details a signer put into the manifest, as verify reports them."""

from __future__ import annotations

import io

from PIL import Image
from provkit.provenance.capture import capture_details, claim_generator
from provkit.provenance.manifest import ManifestSpec, manifest_definition
from provkit.provenance.verify import verify_file

from tests.fixtures_provenance import make_identity
from tests.fixtures_verify import sign_bytes


def test_claim_generator_info_of_any_vendor_reads_as_name_and_version():
    assert claim_generator(
        {
            "claim_generator_info": [
                {"name": "Truepic Lens SDK", "version": "3.2.1", "org.contentauth.c2pa_rs": "0.9"},
                {"name": "Adobe Photoshop", "version": "26.1"},
            ]
        }
    ) == ["Truepic Lens SDK 3.2.1", "Adobe Photoshop 26.1"]
    assert claim_generator({"claim_generator": "Nikon_Z6III/1.10 c2pa-rs/0.33"}) == [
        "Nikon Z6III 1.10"
    ]
    assert claim_generator({"claim_generator_info": ["not a dict", {"name": ""}]}) == []
    assert claim_generator({}) == []


def test_capture_details_come_only_from_signed_assertions():
    manifest = {
        "assertions": [
            {
                "label": "c2pa.metadata",
                "data": {
                    "@context": {},
                    "exif:Make": "NIKON",
                    "exif:Model": "NIKON Z 6_3",
                    "exif:DateTimeOriginal": "2025:06:01 10:00:00",
                },
            },
            {"label": "stds.iptc", "data": {"City": "Lyon", "CountryName": "France"}},
            {"label": "c2pa.actions.v2", "data": {"exif:Make": "not an EXIF assertion"}},
        ]
    }
    details = capture_details(manifest)
    assert details["device"] == "NIKON Z 6_3"  # the make is not repeated
    assert details["time"] == "2025:06:01 10:00:00"
    assert details["location"] == "Lyon, France"
    assert capture_details({"assertions": []}) is None
    long = capture_details(
        {"assertions": [{"label": "stds.exif", "data": {"exif:Model": "x" * 5000}}]}
    )
    assert len(long["device"]) == 200  # a hostile manifest's text is bounded


def test_verify_reports_the_vendor_app_and_the_signed_capture(tmp_path, photos):
    vendor, _ = make_identity(tmp_path / "vendor", "Field Camera Co")
    definition = manifest_definition(ManifestSpec(source_type="digitalCapture"))
    definition["claim_generator_info"] = [{"name": "Field Camera", "version": "2.0"}]
    definition["assertions"].append(
        {
            "label": "stds.exif",
            "data": {
                "exif:Make": "Canon",
                "exif:Model": "EOS R5",
                "exif:GPSLatitude": "48,51.4N",
                "exif:GPSLongitude": "2,21.1E",
                "exif:DateTimeOriginal": "2026-01-02T03:04:05Z",
            },
        }
    )
    buf = io.BytesIO()
    Image.fromarray(photos[1]).save(buf, "JPEG", quality=90)
    path = tmp_path / "field.jpg"
    path.write_bytes(sign_bytes(buf.getvalue(), "image/jpeg", vendor, definition=definition))
    report = verify_file(path, recover=False)
    assert report.state == "valid"
    assert report.generator == ["Field Camera 2.0"]
    assert report.capture == {
        "device": "Canon EOS R5",
        "time": "2026-01-02T03:04:05Z",
        "location": "48,51.4N, 2,21.1E",
    }
    plain = tmp_path / "plain.jpg"
    Image.fromarray(photos[1]).save(plain, quality=90)  # unsigned EXIF is never a claim
    assert verify_file(plain, recover=False).capture is None
