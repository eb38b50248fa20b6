"""RFC 9162 Merkle tree hashing, proof plans and proof verification.

A node is named by ``(level, index)``: it covers leaves ``[index << level, (index + 1) << level)``.
Every complete node of the tree is stored, so any proof is the hashes of O(log n) stored nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
NodeId = tuple[int, int]
Range = tuple[int, int]


_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()
FIRST_LINK = bytes(HASH_SIZE)


def link_hash(previous_link: bytes, leaf: bytes) -> bytes:
    """SHA-256(0x02 ‖ previous link ‖ leaf hash): each stored row's tie to the row before it.

    Not part of RFC 9162: a forensic aid that lets verification name the exact row that was moved,
    inserted or deleted. The guarantee against a writer who recomputes every hash is the signed checkpoint.
    """
    return hashlib.sha256(b"\x02" + previous_link + leaf).digest()


class ProofError(ValueError):
    """A proof was asked for sizes or indices that the tree does not have."""


def _split(size: int) -> int:
    """The largest power of two smaller than size (RFC 9162's k)."""
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The complete nodes, left to right, whose hashes fold into MTH(D[begin:end])."""
    size = end - begin
    if size <= 0 or begin % (1 << (size - 1).bit_length()):
        raise ProofError(f"[{begin}, {end}) is not a subtree of an RFC 9162 tree")
    nodes: list[NodeId] = []
    position = begin
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root of consecutive complete subtrees, given left to right in descending size."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form the inclusion proof of a leaf, in RFC 9162 order."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees whose hashes form the consistency proof between two sizes, in RFC 9162 order."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    ranges: list[Range] = []
    begin, end, whole = 0, second, True
    m = first
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            m -= k
            begin += k
            whole = False
    if not whole:
        ranges.append((begin, end))
    ranges.reverse()
    return ranges


@dataclass
class Frontier:
    """The compact right edge of a growing tree: one complete subtree per set bit of its size."""

    size: int = 0
    nodes: list[tuple[int, bytes]] = field(default_factory=list)

    def append(self, leaf: bytes, completed: list[tuple[int, int, bytes]]) -> None:
        """Add a leaf hash; every node it completes is added to completed as (level, index, hash)."""
        index = self.size
        self.size = index + 1
        nodes = self.nodes
        if not index & 1:  # a left child: nothing completes
            nodes.append((0, leaf))
            return
        level, digest = 0, leaf
        while nodes and nodes[-1][0] == level:
            digest = _sha256(b"\x01" + nodes.pop()[1] + digest).digest()
            level += 1
            completed.append((level, index >> level, digest))
        nodes.append((level, digest))

    def root(self) -> bytes:
        """MTH of the tree so far."""
        if not self.nodes:
            return EMPTY_ROOT
        return fold([digest for _, digest in self.nodes])

    @staticmethod
    def node_ids(size: int) -> list[NodeId]:
        """The nodes that make up the frontier of a tree of this size."""
        return range_nodes(0, size) if size else []


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof leads to (RFC 9162 §2.1.3.2); ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether the proof shows the leaf at index in the tree of this size and root."""
    try:
        return root_from_inclusion(index, size, leaf, proof) == root
    except ProofError:
        return False


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether the proof shows the tree of size first is a prefix of the tree of size second (§2.1.4.2)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
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
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
