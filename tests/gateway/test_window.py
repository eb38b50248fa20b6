"""The anti-replay window against a reference model: a set of every counter ever accepted.

The semantics (RFC 4303 §3.4.3, RFC 8613 §7.4) with `top` the highest counter accepted so far:
a counter above `top` is fresh; `top` itself and anything accepted before is a replay; anything at or below
`top - 1 - WINDOW` is too old to tell, so refused; the WINDOW counters just below `top` are accepted once each.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from machimori.gateway.envelope import MAX_COUNTER
from machimori.gateway.window import WINDOW, CounterWindow

BIGINT = 2**63  # the database keeps `seen` in a signed 64-bit column


def expected(accepted: set[int], counter: int) -> str | None:
    top = max(accepted, default=0)
    if counter > top:
        return None
    if counter <= top - 1 - WINDOW:
        return "counter-too-old"
    return "replay" if counter in accepted else None


def offer(window: CounterWindow, counter: int) -> tuple[CounterWindow, str | None]:
    refusal = window.refusal(counter)
    return (window if refusal else window.accepted(counter)), refusal


def test_fresh_window_accepts_any_positive_counter() -> None:
    for counter in (1, 2, WINDOW, WINDOW + 5, 10**12, MAX_COUNTER - 1):
        assert CounterWindow().refusal(counter) is None
        assert CounterWindow().accepted(counter) == CounterWindow(counter, 0)


def test_the_same_counter_twice_is_a_replay() -> None:
    window = CounterWindow().accepted(5)
    assert window.refusal(5) == "replay"
    window = window.accepted(9)
    assert window.refusal(9) == "replay"
    assert window.refusal(5) == "replay"


def test_out_of_order_counters_inside_the_window_are_accepted_once() -> None:
    window = CounterWindow().accepted(1).accepted(100)
    for counter in range(99, 100 - 1 - WINDOW, -1):  # 99 down to 68: the WINDOW counters below the top
        assert window.refusal(counter) is None, counter
        window = window.accepted(counter)
        assert window.refusal(counter) == "replay", counter
    assert window.top == 100
    assert window.seen == 2**WINDOW - 1
    assert window.refusal(100 - 1 - WINDOW) == "counter-too-old"
    assert window.refusal(1) == "counter-too-old"
    assert window.refusal(101) is None


def test_edge_of_the_window() -> None:
    window = CounterWindow().accepted(100)
    assert window.refusal(100 - WINDOW) is None  # the oldest counter still inside
    assert window.refusal(100 - WINDOW - 1) == "counter-too-old"
    assert window.refusal(100 - WINDOW - 2) == "counter-too-old"


def test_counters_skipped_before_the_first_are_still_fresh() -> None:
    """The first counter seen is 10 (a device that skipped 1-9 after a restart): 9 was never accepted."""
    window = CounterWindow().accepted(10)
    assert window.refusal(9) is None
    assert window.accepted(9).refusal(9) == "replay"


def test_a_jump_keeps_what_is_still_inside_the_window() -> None:
    window = CounterWindow().accepted(10).accepted(8).accepted(10 + WINDOW)
    assert window.refusal(10) == "replay"  # exactly WINDOW below the new top: the last bit kept
    assert window.refusal(9) == "counter-too-old"
    assert window.refusal(11) is None
    window = CounterWindow().accepted(10).accepted(10 + WINDOW + 1)
    assert window.refusal(10) == "counter-too-old"
    assert window.seen == 0


def test_large_jumps_are_cheap_and_correct() -> None:
    """A device (or a forger with its key) jumping to 10**12 or 2**62 - 1: shifting `seen` by the jump would
    build an integer of that many bits — 125 GB for 10**12."""
    for jump in (10**12, 2**40 + 3, MAX_COUNTER - 1):
        window = CounterWindow().accepted(1).accepted(2).accepted(jump)
        assert window == CounterWindow(jump, 0)
        assert window.refusal(jump) == "replay"
        assert window.refusal(2) == "counter-too-old"
        assert window.refusal(jump - 1) is None
        window = window.accepted(jump - 1).accepted(jump - WINDOW)
        assert window.seen == 1 | 1 << (WINDOW - 1)
        assert window.seen < BIGINT


def test_seen_stays_inside_a_signed_bigint_and_the_window() -> None:
    window = CounterWindow()
    for counter in range(1, 500):
        window = window.accepted(counter)
        assert 0 <= window.seen < 2**WINDOW < BIGINT
    assert window.seen == 2**WINDOW - 1


def test_stored_and_reloaded_window_behaves_the_same() -> None:
    window = CounterWindow().accepted(40).accepted(35).accepted(12)
    reloaded = CounterWindow(int(window.top), int(window.seen))  # as the writer reads it back from the database
    for counter in range(1, 60):
        assert reloaded.refusal(counter) == window.refusal(counter)


counter_moves = st.one_of(
    st.tuples(st.just("near"), st.integers(min_value=-WINDOW - 3, max_value=WINDOW + 3)),  # around top
    st.tuples(st.just("at"), st.integers(min_value=1, max_value=200)),
    st.tuples(st.just("jump"), st.integers(min_value=WINDOW, max_value=2**40)),
)


def _counter(top: int, move: tuple[str, int]) -> int:
    kind, amount = move
    if kind == "near":
        return max(1, top + amount)
    if kind == "at":
        return amount
    return min(top + amount, MAX_COUNTER - 1)


@settings(max_examples=200, deadline=None)
@given(moves=st.lists(counter_moves, max_size=80))
def test_window_matches_the_reference_model(moves: list[tuple[str, int]]) -> None:
    window = CounterWindow()
    accepted: set[int] = set()
    handed: list[int] = []
    for move in moves:
        counter = _counter(window.top, move)
        want = expected(accepted, counter)
        window, refusal = offer(window, counter)
        assert refusal == want, (counter, sorted(accepted)[-5:])
        if refusal is None:
            assert counter not in accepted
            accepted.add(counter)
            handed.append(counter)
        assert window.top == max(accepted, default=0)
        assert 0 <= window.seen < 2**WINDOW
    assert len(handed) == len(set(handed))  # never the same counter twice


class WindowMachine(RuleBasedStateMachine):
    """The same model, explored by hypothesis' stateful search (shrinks to the shortest sequence that breaks)."""

    def __init__(self) -> None:
        super().__init__()
        self.window = CounterWindow()
        self.accepted: set[int] = set()

    def _offer(self, counter: int) -> None:
        want = expected(self.accepted, counter)
        self.window, refusal = offer(self.window, counter)
        assert refusal == want
        if refusal is None:
            self.accepted.add(counter)

    @rule(delta=st.integers(min_value=-WINDOW - 2, max_value=WINDOW + 2))
    def near_top(self, delta: int) -> None:
        self._offer(max(1, self.window.top + delta))

    @rule(delta=st.integers(min_value=1, max_value=2**50))
    def ahead(self, delta: int) -> None:
        self._offer(min(self.window.top + delta, MAX_COUNTER - 1))

    @rule(data=st.data())
    def replay_an_accepted_one(self, data: st.DataObject) -> None:
        if self.accepted:
            counter = data.draw(st.sampled_from(sorted(self.accepted)))
            assert self.window.refusal(counter) in ("replay", "counter-too-old")

    @invariant()
    def top_is_the_highest_accepted(self) -> None:
        assert self.window.top == max(self.accepted, default=0)
        assert 0 <= self.window.seen < 2**WINDOW

    @invariant()
    def seen_bits_are_exactly_the_accepted_counters_below_top(self) -> None:
        top = self.window.top
        bits = {top - 1 - i for i in range(WINDOW) if self.window.seen >> i & 1}
        assert bits == {c for c in self.accepted if top - 1 - WINDOW < c < top}


WindowMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestWindowMachine = WindowMachine.TestCase
