"""The symbolic values the pickle walk keeps on its stack and memo (nothing is executed)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Dictionary entries tracked per dictionary (the rest are counted, not kept).
MAX_DICT_ITEMS = 1024


@dataclass(frozen=True)
class Str:
    """A string constant."""

    value: str


@dataclass(frozen=True)
class Bytes:
    """A short bytes constant (kept only to analyse pickles embedded in pickles)."""

    value: bytes


@dataclass(frozen=True)
class Global:
    """An imported name."""

    module: str
    name: str

    @property
    def full(self) -> str:
        """`module.name`, with Python 2's `__builtin__` read as `builtins`."""
        module = "builtins" if self.module == "__builtin__" else self.module
        return f"{module}.{self.name}"


@dataclass(eq=False)
class Called:
    """The result of a call (REDUCE, NEWOBJ, INST, OBJ); BUILD records its state."""

    callee: object
    args: object
    state: object = None
    #: Whether a BUILD reached it (a second one may call what the first set).
    built: bool = False
    #: Whether it may hold a Lightning `AttributeDict` (pickle_holding.py).
    holds: bool = False
    #: Whether it was handed on (put in a container or state, given to a call).
    sealed: bool = False


@dataclass(eq=False)
class Dict:
    """A dictionary under construction; only string keys are kept."""

    items: dict[str, object] = field(default_factory=dict)
    #: Whether an item was dropped (a key that is not a string, or no room): not exact.
    partial: bool = False
    #: Whether it may hold a Lightning `AttributeDict`, kept or dropped (pickle_holding.py).
    holds: bool = False
    #: Whether it was handed on (put in a container or state, given to a call).
    sealed: bool = False

    def set(self, key: object, value: object) -> None:
        """Record `key: value` while there is room."""
        if isinstance(key, Str) and len(self.items) < MAX_DICT_ITEMS:
            self.items[key.value] = value
        else:
            self.partial = True


@dataclass(eq=False)
class List:
    """A list, set or frozenset: its items are not kept, only what pickle_holding.py tracks."""

    #: Whether it may hold a Lightning `AttributeDict`.
    holds: bool = False
    #: Whether it was handed on (put in a container or state, given to a call).
    sealed: bool = False


class _Mark:
    pass


MARK = _Mark()
OTHER = object()  # any value the walk does not need to know
