"""``provkit verify --format crjson`` gives a crJSON document for every state, valid
against the crJSON schema subset in tests/data (its source is named there), with the
state ``--json`` reports and the same exit code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from PIL import Image

from provkit.cli import root
from tests import fixtures_causes as make

SCHEMA = json.loads((Path(__file__).parent / "data" / "crjson-subset.schema.json").read_text())


def crjson(path, *args) -> tuple[dict, int]:
    result = CliRunner().invoke(root, ["verify", "--format", "crjson", *args, str(path)])
    return json.loads(result.stdout), result.exit_code


def own_state(path, *args) -> tuple[str, int]:
    result = CliRunner().invoke(root, ["verify", "--json", *args, str(path)])
    return json.loads(result.stdout)[0]["c2pa"]["state"], result.exit_code


@pytest.fixture
def jpeg(photos):
    return make.photo_jpeg(photos[2])


def _files(tmp_path, jpeg, photos) -> dict[str, Path]:
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg)
    remote, _ = make.remote_manifest(tmp_path, jpeg)
    signed = make.signed_by_workspace(tmp_path, jpeg)
    unparseable = tmp_path / "unparseable.jpg"
    data = bytearray(signed.read_bytes())
    i = data.find(b"cbor", data.find(b"c2pa.signature"))
    data[i + 4 : i + 30] = bytes(26)
    unparseable.write_bytes(bytes(data))
    bilevel = tmp_path / "bilevel.tif"
    Image.fromarray(photos[4]).convert("1").save(bilevel, compression="group4")
    return {
        "trusted": signed,
        "absent": plain,
        "remote": remote,
        "unparseable": unparseable,
        "altered": make.content_altered(tmp_path, jpeg),
        "expired": make.expired_signer(tmp_path, jpeg),
        "bilevel": bilevel,
    }


def test_every_state_gives_a_crjson_document_valid_against_the_schema(tmp_path, jpeg, photos):
    expected = {
        "trusted": ("trusted", 0),
        "absent": ("absent", 1),
        "remote": ("absent", 1),
        "unparseable": ("invalid", 1),
        "altered": ("invalid", 1),
        "expired": ("invalid", 1),
        "bilevel": ("absent", 1),
    }
    for name, path in _files(tmp_path, jpeg, photos).items():
        doc, code = crjson(path, "--no-recover")
        jsonschema.validate(doc, SCHEMA)
        state, own_code = own_state(path, "--no-recover")
        assert (state, own_code) == expected[name], name
        assert code == own_code, name  # crJSON and --json agree on the exit code
        assert doc["jsonGenerator"]["name"] and doc["jsonGenerator"]["version"]
        if doc["manifests"]:
            assert doc["manifests"][0]["validationResults"]
        else:
            assert doc["extras:state"] == state, name
    remote, _ = crjson(tmp_path / "remote.jpg")
    assert remote["extras:remote_url"] == make.REMOTE_URL
    broken, _ = crjson(tmp_path / "unparseable.jpg")
    assert broken["extras:failure"][0]["code"] == "manifest.unreadable"


def test_a_file_built_on_ingredients_validates_with_every_manifest(tmp_path, jpeg):
    tampered = make.content_altered(tmp_path, jpeg)
    new = tmp_path / "edit.jpg"
    assert (
        CliRunner()
        .invoke(root, ["sign", str(tampered), "-o", str(new), "--action", "edited"])
        .exit_code
        == 0
    )
    doc, code = crjson(new)
    jsonschema.validate(doc, SCHEMA)
    assert len(doc["manifests"]) >= 2 and code == 0


def test_the_schema_refuses_what_the_issue_saw_a_document_without_json_generator():
    with pytest.raises(jsonschema.ValidationError, match="jsonGenerator"):
        jsonschema.validate(
            {"@context": {"@vocab": "https://c2pa.org/crjson"}, "manifests": []}, SCHEMA
        )
