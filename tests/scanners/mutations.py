"""The byte mutations the Hypothesis twins of the fuzz campaigns draw from their seeds."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


def mutated(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with up to six byte flips, insertions, deletions or splices of another seed."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 6))):
            action = draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
            at = draw(st.integers(0, len(data)))
            if action == "flip" and at < len(data):
                data[at] = draw(st.integers(0, 255))
            elif action == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=12))
            elif action == "delete":
                del data[at : at + draw(st.integers(1, 8))]
            else:
                other = draw(st.sampled_from(seeds))
                cut = draw(st.integers(0, len(other)))
                data[at:] = other[cut:]
        return bytes(data)

    return draw_one()
