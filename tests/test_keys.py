"""Signing identity: development CA, import checks, callback signers, secrecy of keys."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from click.testing import CliRunner
from provkit.provenance import keys
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

from provkit.cli import root
from tests.fixtures_provenance import sdk_state


def test_keys_init_writes_private_keys_owner_only():
    info = keys.init("Acme News")
    assert info.organization == "Acme News"
    for name in ("signer.key", "ca.key"):
        mode = stat.S_IMODE((keys.keys_dir() / name).stat().st_mode)
        assert mode == 0o600, name


def test_development_leaf_has_the_extensions_c2pa_requires():
    from cryptography import x509

    keys.init()
    leaf, ca = keys.load().certificates
    assert leaf.issuer == ca.subject and leaf.issuer != leaf.subject
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert any(e.dotted_string in keys.C2PA_EKUS for e in ekus)
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_init_refuses_to_replace_an_identity_without_force():
    keys.init()
    with pytest.raises(ConfigError, match="already exists"):
        keys.init()
    first = keys.load().leaf.sha256
    keys.init(force=True)
    assert keys.load().leaf.sha256 != first


def _write_chain(tmp_path, certs, key):
    chain = tmp_path / "chain.pem"
    chain.write_bytes(b"".join(keys._pem(c) for c in certs))
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(keys._key_pem(key))
    return chain, key_path


def test_import_rejects_a_key_that_does_not_match_the_leaf(tmp_path):
    ca, _, leaf, _ = keys.make_chain("A")
    _, _, _, other_key = keys.make_chain("B")
    chain, key = _write_chain(tmp_path, [leaf, ca], other_key)
    with pytest.raises(BadInput, match="does not match the first"):
        keys.import_(chain, key)


def test_import_rejects_an_expired_certificate(tmp_path):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    ca, _, leaf, leaf_key = keys.make_chain("Old", days=30, now=past)
    chain, key = _write_chain(tmp_path, [leaf, ca], leaf_key)
    with pytest.raises(BadInput, match="expired"):
        keys.import_(chain, key)


def test_import_rejects_a_chain_that_is_not_leaf_first(tmp_path):
    ca, _, leaf, leaf_key = keys.make_chain("Org")
    chain, key = _write_chain(tmp_path, [ca, leaf], leaf_key)
    with pytest.raises(BadInput) as err:
        keys.import_(chain, key)
    assert "chain.pem" in str(err.value)


def test_cli_import_failure_is_one_line_naming_the_file(tmp_path):
    ca, _, leaf, _ = keys.make_chain("A")
    _, _, _, other_key = keys.make_chain("B")
    chain, key = _write_chain(tmp_path, [leaf, ca], other_key)
    result = CliRunner().invoke(root, ["keys", "import", "--chain", str(chain), "--key", str(key)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "key.pem" in result.output and "Traceback" not in result.output


def test_imported_chain_signs_valid_manifests(tmp_path, photo_path):
    ca, _, leaf, leaf_key = keys.make_chain("Imported Org")
    chain, key = _write_chain(tmp_path, [leaf, ca], leaf_key)
    info = keys.import_(chain, key)
    assert info.organization == "Imported Org"
    assert stat.S_IMODE((keys.keys_dir() / "signer.key").stat().st_mode) == 0o600
    out = tmp_path / "out.jpg"
    issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    assert sdk_state(out) == "valid"  # its CA is not a configured anchor
    assert sdk_state(out, anchors=keys._pem(ca)) == "trusted"


def test_callback_signer_produces_a_trusted_manifest(tmp_path, photo_path):
    """A key held elsewhere (KMS/HSM) signs through a callback; provkit never sees it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    ca, _, leaf, leaf_key = keys.make_chain("HSM Org")

    def hsm_sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(leaf_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    ident = keys.Identity.from_callback(keys._pem(leaf) + keys._pem(ca), hsm_sign)
    out = tmp_path / "hsm.jpg"
    issue(
        photo_path,
        out,
        spec=ManifestSpec(source_type="digitalCapture"),
        watermark=False,
        identity=ident,
    )
    assert sdk_state(out, anchors=keys._pem(ca)) == "trusted"


def test_keys_show_reports_subject_issuer_validity_fingerprint_algorithm():
    keys.init("Show Org")
    result = CliRunner().invoke(root, ["keys", "show", "--json"])
    assert result.exit_code == 0, result.output
    import json

    signer = json.loads(result.output)["signer"]
    assert "Show Org" in signer["subject"] and "Show Org CA" in signer["issuer"]
    assert signer["not_after"] > signer["not_before"]
    assert len(signer["sha256"]) == 64 and "ES256" in signer["algorithm"]


def test_private_key_never_appears_in_any_command_output(tmp_path, photo_path):
    runner = CliRunner()
    outputs = []

    def run(*args):
        result = runner.invoke(root, list(args))
        outputs.append(result.output)
        return result

    for as_json in ([], ["--json"]):
        run("keys", "init", "--force", *as_json)
        run("keys", "show", *as_json)
        out = tmp_path / f"s{len(outputs)}.jpg"
        run(
            "sign",
            str(photo_path),
            "-o",
            str(out),
            "--source-type",
            "digitalCapture",
            "--no-watermark",
            *as_json,
        )
        run("verify", str(out), *as_json)
        run("ledger", "list", *as_json)
    ca, _, leaf, leaf_key = keys.make_chain("Imported")
    chain, key = _write_chain(tmp_path, [leaf, ca], leaf_key)
    run("keys", "import", "--chain", str(chain), "--key", str(key))
    secrets = [keys.keys_dir().joinpath("signer.key").read_bytes(), key.read_bytes()]
    bodies = []
    for pem in secrets:
        lines = [ln for ln in pem.decode().splitlines() if ln and not ln.startswith("-----")]
        bodies += lines
    text = "\n".join(outputs)
    assert text.strip()
    for line in bodies:
        assert line not in text
    assert "PRIVATE KEY" not in text


def test_import_refuses_to_replace_an_identity_without_force(tmp_path):
    keys.init()
    before = (keys.keys_dir() / "chain.pem").read_bytes()
    ca, _, leaf, leaf_key = keys.make_chain("Imported Org")
    chain, key = _write_chain(tmp_path, [leaf, ca], leaf_key)
    with pytest.raises(ConfigError, match="--force"):
        keys.import_(chain, key)
    refused = CliRunner().invoke(root, ["keys", "import", "--chain", str(chain), "--key", str(key)])
    assert refused.exit_code == 2 and "already exists" in refused.output
    assert (keys.keys_dir() / "chain.pem").read_bytes() == before
    forced = CliRunner().invoke(
        root, ["keys", "import", "--chain", str(chain), "--key", str(key), "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert keys.load().leaf.organization == "Imported Org"


@pytest.mark.parametrize("replace", ["init --force", "import --force"])
def test_files_signed_before_the_identity_was_replaced_stay_trusted(tmp_path, photo_path, replace):
    from provkit.provenance.verify import verify_file

    keys.init("First Org")
    before = tmp_path / "before.jpg"
    issue(photo_path, before, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    assert verify_file(before).state == "trusted"
    if replace == "init --force":
        keys.init("Second Org", force=True)
    else:
        ca, _, leaf, leaf_key = keys.make_chain("Imported Org")
        keys.import_(*_write_chain(tmp_path, [leaf, ca], leaf_key), force=True)
    assert not (keys.keys_dir() / "ca.key").exists() or replace == "init --force"
    assert verify_file(before).state == "trusted"
    assert verify_file(before, trust_local=False).state == "valid"
    assert keys.show().retired_anchors == 1


def test_keys_show_reports_an_expired_identity_instead_of_failing():
    ca, _, leaf, leaf_key = keys.make_chain(
        "Old Org", days=10, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    d = keys.keys_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / "chain.pem").write_bytes(keys._pem(leaf) + keys._pem(ca))
    keys._write_private(d / "signer.key", keys._key_pem(leaf_key))
    runner = CliRunner()
    shown = runner.invoke(root, ["keys", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    import json

    data = json.loads(shown.output)
    assert data["expired"] is True and "expired" in data["problem"]
    assert data["signer"]["not_after"].startswith("2020-01-11")
    human = runner.invoke(root, ["keys", "show"])
    assert human.exit_code == 0 and "EXPIRED" in human.output
    with pytest.raises(BadInput, match="expired"):
        keys.load()  # signing still refuses it
