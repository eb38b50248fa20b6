"""RFC 9162 hashing and proofs, checked against a direct transcription of the RFC's definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machimori.audit import merkle


def mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1 (recursive, no stored nodes)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


class StoredTree:
    """Every complete node of a tree, as the log stores them."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.frontier = merkle.Frontier()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.roots: list[bytes] = []
        for i, leaf in enumerate(leaves):
            digest = merkle.leaf_hash(leaf)
            self.nodes[(0, i)] = digest
            completed: list[tuple[int, int, bytes]] = []
            self.frontier.append(digest, completed)
            for level, index, node in completed:
                self.nodes[(level, index)] = node
            self.roots.append(self.frontier.root())

    def hash(self, begin: int, end: int) -> bytes:
        return merkle.fold([self.nodes[node] for node in merkle.range_nodes(begin, end)])


@given(st.integers(min_value=1, max_value=70))
def test_every_prefix_root_matches_the_rfc_definition(n: int) -> None:
    leaves = leaves_of(n)
    tree = StoredTree(leaves)
    assert [tree.roots[i] for i in range(n)] == [mth(leaves[: i + 1]) for i in range(n)]


@given(st.integers(min_value=1, max_value=70), st.data())
def test_inclusion_proof_from_stored_nodes_is_the_rfc_path(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = StoredTree(leaves)
    size = data.draw(st.integers(min_value=1, max_value=n))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = [tree.hash(b, e) for b, e in merkle.inclusion_ranges(index, size)]
    assert proof == path(index, leaves[:size])
    root = mth(leaves[:size])
    assert merkle.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), proof, root)


@given(st.integers(min_value=1, max_value=70), st.data())
def test_consistency_proof_from_stored_nodes_is_the_rfc_subproof(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = StoredTree(leaves)
    second = data.draw(st.integers(min_value=1, max_value=n))
    first = data.draw(st.integers(min_value=1, max_value=second))
    proof = [tree.hash(b, e) for b, e in merkle.consistency_ranges(first, second)]
    expected = [] if first == second else subproof(first, leaves[:second], True)
    assert proof == expected
    assert merkle.verify_consistency(first, second, mth(leaves[:first]), mth(leaves[:second]), proof)


@given(st.integers(min_value=2, max_value=40), st.data())
def test_a_wrong_proof_hash_fails_verification(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = StoredTree(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = [tree.hash(b, e) for b, e in merkle.inclusion_ranges(index, n)]
    root = mth(leaves)
    leaf = merkle.leaf_hash(leaves[index])
    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    forged = [*proof]
    forged[position] = hashlib.sha256(forged[position]).digest()
    assert not merkle.verify_inclusion(index, n, leaf, forged, root)
    assert not merkle.verify_inclusion(index, n, leaf, proof[:-1], root)
    assert not merkle.verify_inclusion(index, n, leaf, [*proof, proof[0]], root)
    other = (index + 1) % n
    assert not merkle.verify_inclusion(other, n, leaf, proof, root)


@given(st.integers(min_value=3, max_value=40), st.data())
def test_a_forked_tree_fails_consistency(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    first = data.draw(st.integers(min_value=1, max_value=n - 1))
    proof = subproof(first, leaves, True)
    forked = [*leaves[: first - 1], b"rewritten", *leaves[first:]]
    assert not merkle.verify_consistency(first, n, mth(forked[:first]), mth(leaves), proof)
    assert not merkle.verify_consistency(first, n, mth(leaves[:first]), mth(forked), proof)
    assert not merkle.verify_consistency(first, n, mth(leaves[:first]), mth(leaves), [])


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert merkle.Frontier().root() == hashlib.sha256(b"").digest()


def test_frontier_node_ids_follow_the_bits_of_the_size() -> None:
    assert merkle.Frontier.node_ids(13) == [(3, 0), (2, 2), (0, 12)]
    assert merkle.Frontier.node_ids(0) == []


@pytest.mark.parametrize(("index", "size"), [(5, 5), (-1, 3), (0, 0)])
def test_inclusion_out_of_range_is_refused(index: int, size: int) -> None:
    with pytest.raises(merkle.ProofError, match=f"index {index} "):
        merkle.inclusion_ranges(index, size)


def test_consistency_backwards_is_refused() -> None:
    with pytest.raises(merkle.ProofError, match="from size 6 to size 5"):
        merkle.consistency_ranges(6, 5)


def test_roots_match_pymerkle_an_independent_rfc_9162_implementation() -> None:
    pymerkle = __import__("pymerkle")
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    leaves = leaves_of(37)
    ours = StoredTree(leaves)
    for leaf in leaves:
        tree.append_entry(leaf)
    for size in (1, 2, 3, 8, 13, 37):
        assert tree.get_root(size) == ours.roots[size - 1]
