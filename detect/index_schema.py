"""Storage of banks (reference sets) in the provkit database (migrations of ``detect.index``).

A bank is a row of ``ref_sets`` (the table keeps its first name): its label, whether it
is protected, what a match in it means (``action``: deny, review, label or allow),
whether it takes part in matching (``enabled``) and its own match distances.

Image items are rows of ``ref_items`` (path, SHA-256, the three hashes, crop
fingerprints, CLIP embedding, metadata). Hashes imported from a list (a partner's
hash bank) have no image and come by the million, so they are stored in blocks:
one ``ref_hash_blocks`` row holds up to :data:`BLOCK_SIZE` hashes of one kind as
packed arrays (codes, qualities), their source ids and metadata as newline-joined
text (one id, one JSON object per line), and a removed mask. An imported hash's
item id is ``HASH_ID_BASE + block_id * BLOCK_SIZE + position``, above every
``ref_items`` id, so ids stay unique in a set and ascending in storage order.
"""

from __future__ import annotations

#: Hashes per block at most (positions fit 16 bits).
BLOCK_SIZE = 1 << 16
#: Item ids of imported hashes start here (image items count up from 1).
HASH_ID_BASE = 1 << 40


def hash_item_id(block: int, position: int) -> int:
    return HASH_ID_BASE + block * BLOCK_SIZE + position


def split_item_id(item_id: int) -> tuple[int, int] | None:
    """(block, position) of an imported hash's item id; None for an image item."""
    if item_id < HASH_ID_BASE:
        return None
    return divmod(item_id - HASH_ID_BASE, BLOCK_SIZE)


def _v1(db) -> None:
    db.execute(
        """CREATE TABLE ref_sets (
            name TEXT PRIMARY KEY, label TEXT, protected INTEGER NOT NULL DEFAULT 0,
            description TEXT, created TEXT NOT NULL, version TEXT NOT NULL, clip_spec TEXT)"""
    )
    db.execute(
        """CREATE TABLE ref_items (
            id INTEGER PRIMARY KEY, set_name TEXT NOT NULL REFERENCES ref_sets(name),
            path TEXT NOT NULL, sha256 TEXT NOT NULL, phash INTEGER NOT NULL,
            dhash INTEGER NOT NULL, pdq BLOB NOT NULL, pdq_quality INTEGER NOT NULL,
            variants BLOB NOT NULL DEFAULT x'', clip BLOB, clip_model TEXT,
            metadata TEXT NOT NULL DEFAULT '{}', added TEXT NOT NULL,
            UNIQUE (set_name, sha256))"""
    )
    db.execute("CREATE INDEX ref_items_set ON ref_items(set_name, id)")


def _v2(db) -> None:
    db.execute(
        """CREATE TABLE ref_hash_blocks (
            id INTEGER PRIMARY KEY, set_name TEXT NOT NULL REFERENCES ref_sets(name),
            kind TEXT NOT NULL, n INTEGER NOT NULL, n_removed INTEGER NOT NULL DEFAULT 0,
            codes BLOB NOT NULL, quality BLOB NOT NULL, source_ids TEXT NOT NULL,
            metadata TEXT NOT NULL, removed BLOB, source TEXT, added TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX ref_hash_blocks_set ON ref_hash_blocks(set_name, id)")


def _v3(db) -> None:
    """A small JPEG of each image item, for pages that show what matched."""
    db.execute("ALTER TABLE ref_items ADD COLUMN thumbnail BLOB")


def _v4(db) -> None:
    """Bank settings: what a match means (``action``), whether the bank takes part in
    matching (``enabled``), and its own match distances (JSON per kind, or NULL)."""
    db.execute("ALTER TABLE ref_sets ADD COLUMN action TEXT")
    db.execute("ALTER TABLE ref_sets ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE ref_sets ADD COLUMN max_distance TEXT")


SCHEMA = [_v1, _v2, _v3, _v4]
