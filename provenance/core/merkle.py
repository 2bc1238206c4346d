"""Merkle tree hashing and proofs as RFC 6962 / RFC 9162 define them.

A leaf hash is ``SHA-256(0x00 || data)``, an interior node ``SHA-256(0x01 || left ||
right)``, the root of the empty tree ``SHA-256("")``; a tree of ``n`` leaves splits at
the largest power of two below ``n``. Proof generation takes a callable
``subtree(lo, hi)`` that answers the root of leaves ``[lo, hi)`` (every range it asks
for starts on a multiple of a power of two at least ``hi - lo``), so one algorithm
serves an in-memory list (:func:`list_subtree`) and a stored log's tiles
(:mod:`provenance.core.tlog`). Verification needs nothing but hashes.

No maintained Python library implements these formats together with the C2SP tiles
and signed notes, so the rules are written here once, small, and tested against the
RFC's tree of eight leaves and a direct recomputation for many sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(hashes: Sequence[bytes]) -> bytes:
    """The root of a tree whose leaf hashes are ``hashes`` (recursion-free, level by
    level: an odd node at the end of a level moves up unchanged, as RFC 6962's split
    gives)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def list_subtree(hashes: Sequence[bytes]) -> Callable[[int, int], bytes]:
    """``subtree(lo, hi)`` over a list of leaf hashes."""
    return lambda lo, hi: root_of(hashes[lo:hi])


# ------------------------------------------------------------------ the right edge


def frontier_push(
    frontier: list[tuple[int, bytes]],
    leaf: bytes,
    done: Callable[[int, int, bytes], None] | None = None,
    *,
    size: int,
) -> None:
    """Append one leaf hash to ``frontier`` (the roots of the complete subtrees along
    the right edge, ``(level, hash)`` left to right) for a tree of ``size`` leaves
    before the push. ``done(level, index, hash)`` hears every complete subtree formed
    (the leaf itself at level 0 included)."""
    level, node, index = 0, leaf, size
    if done is not None:
        done(0, index, node)
    while frontier and frontier[-1][0] == level:
        _, left = frontier.pop()
        node = node_hash(left, node)
        level += 1
        index >>= 1
        if done is not None:
            done(level, index, node)
    frontier.append((level, node))


def frontier_root(frontier: Sequence[tuple[int, bytes]]) -> bytes:
    """The tree's root from its right-edge subtrees (hashed right to left)."""
    if not frontier:
        return EMPTY_ROOT
    node = frontier[-1][1]
    for _, left in reversed(frontier[:-1]):
        node = node_hash(left, node)
    return node


# ------------------------------------------------------------------ proofs


def inclusion_proof(index: int, size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 2.1.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()  # leaf to root
    return path


def consistency_proof(old: int, new: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The proof that the tree of ``new`` leaves extends the one of ``old`` leaves
    (RFC 6962 2.1.2); empty for ``old`` 0 or ``old == new``."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    if old == 0 or old == new:
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, new, old, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(subtree(lo, hi))
            break
        k = split(n)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size``
    leaves with ``root`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree (``new``, ``new_root``) extends (``old``,
    ``old_root``) (RFC 9162 2.1.4.2)."""
    if not 0 <= old <= new or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old == 0:
        return not proof
    if old == new:
        return not proof and old_root == new_root
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
