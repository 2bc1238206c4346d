"""Merkle hashing and proofs (RFC 6962 / 9162), C2SP signed notes and checkpoints, and
the stored log: against published vectors and a direct recomputation."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provkit.provenance.core import merkle, note, tlog
from provkit.provenance.core.errors import BadInput

# The eight leaves of RFC 6962's reference tests (certificate-transparency and
# transparency-dev/merkle test data) and the roots of their first 1..8.
LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size) -> audit path; (old size, new size) -> consistency proof
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (0, 1): [],
}
CONSISTENCY = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
# The C2SP signed-note specification's example key and note.
NOTE_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
NOTE_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NOTE_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
NOTE = (
    NOTE_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg"
    "YN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

HASHES = [merkle.leaf_hash(x) for x in LEAVES]


def mth(hashes):
    """RFC 6962's definition, written out recursively (the oracle)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def leaves(n, seed=0):
    rnd = random.Random(seed)
    return [merkle.leaf_hash(rnd.randbytes(rnd.randrange(0, 40))) for _ in range(n)]


# ------------------------------------------------------------------ published vectors


def test_roots_match_the_rfc_reference_tree():
    assert (
        merkle.root_of([]).hex()
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    for n, root in enumerate(ROOTS, 1):
        assert merkle.root_of(HASHES[:n]).hex() == root
        frontier = []
        for i, h in enumerate(HASHES[:n]):
            merkle.frontier_push(frontier, h, size=i)
        assert merkle.frontier_root(frontier).hex() == root


@pytest.mark.parametrize("case", sorted(INCLUSION))
def test_inclusion_proofs_match_the_reference_paths(case):
    index, size = case
    proof = merkle.inclusion_proof(index, size, merkle.list_subtree(HASHES))
    assert [p.hex() for p in proof] == INCLUSION[case]
    assert merkle.verify_inclusion(
        HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size - 1])
    )


@pytest.mark.parametrize("case", sorted(CONSISTENCY))
def test_consistency_proofs_match_the_reference_proofs(case):
    old, new = case
    proof = merkle.consistency_proof(old, new, merkle.list_subtree(HASHES))
    assert [p.hex() for p in proof] == CONSISTENCY[case]
    assert merkle.verify_consistency(
        old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), proof
    )


def test_the_signed_note_example_signs_and_verifies_as_published():
    signer = note.Signer.parse(NOTE_SKEY)
    assert str(signer.verifier()) == NOTE_VKEY
    assert signer.sign(NOTE_TEXT) == NOTE
    assert note.open_note(NOTE, note.Verifier.parse(NOTE_VKEY)) == NOTE_TEXT


# ------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_every_inclusion_proof_verifies_against_the_recomputed_root(n, data):
    hashes = leaves(n, seed=n)
    root = mth(hashes)
    assert merkle.root_of(hashes) == root
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, n, merkle.list_subtree(hashes))
    assert merkle.verify_inclusion(hashes[index], index, n, proof, root)
    # a changed leaf, another position, a shorter tree, a changed path: all fail
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"x" + bytes(index)), index, n, proof, root)
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda i: i != index))
        if hashes[other] != hashes[index]:
            assert not merkle.verify_inclusion(hashes[other], index, n, proof, root)
        assert not merkle.verify_inclusion(hashes[index], other, n, proof, root)
        assert not merkle.verify_inclusion(hashes[index], index, n, proof, mth(hashes[:-1]))
        bad = list(proof)
        j = data.draw(st.integers(0, len(bad) - 1))
        bad[j] = bytes(32)
        assert not merkle.verify_inclusion(hashes[index], index, n, bad, root)
        assert not merkle.verify_inclusion(hashes[index], index, n, proof[:-1], root)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_every_consistency_proof_verifies_and_a_rewritten_past_does_not(n, data):
    hashes = leaves(n, seed=n + 1000)
    old = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(old, n, merkle.list_subtree(hashes))
    old_root, new_root = mth(hashes[:old]), mth(hashes)
    assert merkle.verify_consistency(old, n, old_root, new_root, proof)
    # the new tree with one old leaf changed, one dropped, or two reordered
    i = data.draw(st.integers(0, old - 1))
    changed = list(hashes)
    changed[i] = merkle.leaf_hash(b"changed")
    dropped = hashes[:i] + hashes[i + 1 :] + [merkle.leaf_hash(b"pad")]
    swapped = list(hashes)
    if n > 1:
        j = data.draw(st.integers(0, n - 1).filter(lambda k: k != i))
        swapped[i], swapped[j] = swapped[j], swapped[i]
    for forged in (changed, dropped, swapped):
        if forged[:old] == hashes[:old]:
            continue
        forged_proof = merkle.consistency_proof(old, n, merkle.list_subtree(forged))
        assert not merkle.verify_consistency(old, n, old_root, mth(forged), forged_proof)
        assert not merkle.verify_consistency(old, n, old_root, mth(forged), proof)
    if old < n:
        assert not merkle.verify_consistency(
            old, n, old_root, mth(hashes[:-1] + [bytes(32)]), proof
        )


def test_reordered_or_dropped_leaves_change_the_root():
    hashes = leaves(37)
    root = mth(hashes)
    assert merkle.root_of(hashes[1:]) != root
    assert merkle.root_of([hashes[1], hashes[0], *hashes[2:]]) != root
    assert merkle.root_of(hashes[:-1]) != root


# ------------------------------------------------------------------ checkpoints


def test_a_checkpoint_verifies_only_with_its_key_and_untouched():
    signer = note.Signer.generate("provkit-test")
    cp = note.sign_checkpoint(signer, "provkit-test/decisions", 5, merkle.root_of(HASHES[:5]))
    assert cp.note.splitlines()[:3] == ["provkit-test/decisions", "5", cp.note.split("\n")[2]]
    back = note.read_checkpoint(cp.note, signer.verifier())
    assert (back.size, back.root) == (5, merkle.root_of(HASHES[:5]))
    forged_size = cp.note.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(BadInput, match="altered or forged"):
        note.read_checkpoint(forged_size, signer.verifier())
    other = note.Signer.generate("provkit-test")  # same name, another key
    with pytest.raises(BadInput, match="no signature by"):
        note.read_checkpoint(cp.note, other.verifier())
    resigned = other.sign(note.checkpoint_text("provkit-test/decisions", 9, bytes(32)))
    with pytest.raises(BadInput):
        note.read_checkpoint(resigned, signer.verifier())
    # a witness's cosignature line added after ours does not stop it verifying
    cosigned = cp.note + "\u2014 witness.example " + "A" * 96 + "\n"
    assert note.read_checkpoint(cosigned, signer.verifier()).size == 5


@pytest.mark.parametrize(
    "text", ["", "x\n", "a\nb\n\n", "o\n-1\nAAAA\n\n\u2014 k AAAA\n", "\u2014 " * 40000]
)
def test_malformed_checkpoints_are_refused_with_one_line(text):
    with pytest.raises(BadInput):
        note.read_checkpoint(text, note.Verifier.parse(NOTE_VKEY))


def test_verifier_keys_with_a_wrong_hash_are_refused():
    with pytest.raises(BadInput, match="hash does not match"):
        note.Verifier.parse(NOTE_VKEY.replace("c74f20a3", "c74f20a4"))


# ------------------------------------------------------------------ the stored log


def test_stored_tiles_give_the_same_proofs_as_the_leaves_themselves(tmp_path):
    rnd = random.Random(5)
    store = tlog.SqliteTlogStore(tmp_path / "t.db")
    datas = [rnd.randbytes(12) for _ in range(66_000)]  # past a level-2 tile node
    for lo, hi in ((0, 1), (1, 300), (300, 65_536), (65_536, 66_000)):
        store.append("decisions", [(str(i + 1), datas[i]) for i in range(lo, hi)], sign=False)
    hashes = [merkle.leaf_hash(d) for d in datas]
    assert store.size("decisions") == 66_000
    assert store.root("decisions") == merkle.root_of(hashes)
    memory = merkle.list_subtree(hashes)
    for _ in range(25):
        size = rnd.randrange(1, 66_001)
        index = rnd.randrange(size)
        old = rnd.randrange(1, size + 1)
        assert merkle.inclusion_proof(
            index, size, store.subtree("decisions")
        ) == merkle.inclusion_proof(index, size, memory)
        assert merkle.consistency_proof(
            old, size, store.subtree("decisions")
        ) == merkle.consistency_proof(old, size, memory)
    # C2SP tiles: level 0 holds leaf hashes, level 1 the roots of 256 leaves each
    assert store.tile("decisions", 0, 3, 256) == b"".join(hashes[768:1024])
    assert store.tile("decisions", 1, 0, 2) == merkle.root_of(hashes[:256]) + merkle.root_of(
        hashes[256:512]
    )
    assert store.tile("decisions", 0, 257, 256) is None  # not full yet
    assert store.tile("decisions", 0, 257, 208) == b"".join(hashes[65_792:66_000])
    bundle = store.entries_tile("decisions", 0, 2)
    assert bundle == b"\x00\x0c" + datas[0] + b"\x00\x0c" + datas[1]
