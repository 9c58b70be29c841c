"""Where a Lightning `AttributeDict` goes in a pickle: every container that may hold one.

`AttributeDict.__getattr__` answers any attribute a `dict` lacks with an item the pickle chose,
so code that looks an attribute up on one finds the pickle's value, and calls it if it expects
a method. Code the unpickler runs does that on values nested in what it is handed, not only on
its direct arguments: NumPy's array coercion looks up `__array__`, `__array_interface__` and
`__array_struct__` on every item of a nested list (a `MaskedArray`'s `fill_value` in its
`BUILD` state: `__array__` is called, `__array_interface__` makes NumPy read memory at an
address the pickle chose), and torch's tensor constructor `__torch_function__`. So the walk
follows an `AttributeDict` (an instance, or the class) into every container it is put in:

- tuples are searched (they are immutable and kept whole);
- dictionaries, lists, sets and objects filled by `SETITEM(S)`, `APPEND(S)` or `ADDITEMS` carry a
  `holds` flag, set whatever the key (a dictionary keeps only string keys) and however many
  items it has; the result of a call holds what its arguments hold;
- a container put anywhere (in another container, a tuple, a `BUILD` state) is *sealed*: an
  `AttributeDict` put into it afterwards could reach code that already holds the container,
  which the flags above cannot follow, so that is reported. Savers fill every container before
  they hand it on (pickle writes children first), so this only meets crafted files;
- `SETITEM(S)` on an object that is not a dictionary of known C behaviour calls its class's
  `__setitem__` (a tensor's, an array's: a conversion of the value), and `APPEND(S)`/`ADDITEMS`
  on an object its `extend`/`append`/`add`: handing an `AttributeDict` to them is reported.

pickle_state.py reports an `AttributeDict` that reaches a call or a `BUILD` this way.
"""

from __future__ import annotations

from verifier.scanners.lightning_globals import ATTRIBUTE_DICTS
from verifier.scanners.pickle_values import Called, Dict, Global, List

RECONSTRUCTOR = "copyreg._reconstructor"
#: Tuples deeper than this are not searched: the walk then assumes one is there (fail closed).
MAX_DEPTH = 32
#: Classes whose `__setitem__` is the C `dict`'s (or `OrderedDict`'s): it stores the value and
#: looks nothing up on it. Any other object's `__setitem__` is code handed the value.
DICT_SETITEM = ATTRIBUTE_DICTS | {
    "builtins.dict",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
}

Container = Called | Dict | List


def _full(value: object) -> str | None:
    return value.full if isinstance(value, Global) else None


def _class_of(called: Called) -> str | None:
    """The class a call made an instance of: the callee, or `_reconstructor`'s first argument."""
    callee = _full(called.callee)
    args = called.args if isinstance(called.args, tuple) else ()
    if callee == RECONSTRUCTOR and args:
        return _full(args[0])
    return callee


def is_attribute_dict(value: object) -> bool:
    """Whether `value` is an `AttributeDict` instance as the walk sees it."""
    return isinstance(value, Called) and _class_of(value) in ATTRIBUTE_DICTS


def holds(value: object) -> bool:
    """Whether `value` is, or may hold, an `AttributeDict` or its class."""
    return _holds(value, 0, set())


def _holds(value: object, depth: int, seen: set[int]) -> bool:
    if isinstance(value, Global):
        return value.full in ATTRIBUTE_DICTS
    if isinstance(value, Called):
        return value.holds or is_attribute_dict(value)
    if isinstance(value, Dict | List):
        return value.holds
    if isinstance(value, tuple) and id(value) not in seen:
        if depth >= MAX_DEPTH:
            return True
        seen.add(id(value))  # a tuple shared many times is searched once
        return any(_holds(item, depth + 1, seen) for item in value)
    return False


def seal(value: object) -> None:
    """Record that `value` was handed on (put in a container or tuple, a state, a call)."""
    if isinstance(value, Called | Dict | List):
        value.sealed = True


def seal_all(items: list[object]) -> None:
    """Seal each of `items` (put in a tuple, a container, a call's arguments)."""
    for item in items:
        seal(item)


def made(items: list[object]) -> List:
    """A list, set or frozenset built at once (LIST, FROZENSET) from `items`."""
    seal_all(items)
    return List(holds=any(holds(item) for item in items))


def filled(target: Dict, items: list[object]) -> None:
    """A dictionary built at once (DICT) from `items` (keys and values)."""
    seal_all(items)
    target.holds = target.holds or any(holds(item) for item in items)


def keywords_problem(kwargs: object) -> str | None:
    """Why NEWOBJ_EX's keyword arguments hand an `AttributeDict` to `cls.__new__`; None if not."""
    seal(kwargs)
    if holds(kwargs):
        return "NEWOBJ_EX hands a Lightning AttributeDict to a class in its keyword arguments"
    return None


def put(target: object, items: list[object], opcode: str) -> str | None:
    """`items` (keys and values, or elements) put into `target` by `opcode`.

    Returns why that hands an `AttributeDict` where the walk cannot follow it, or None.
    """
    seal_all(items)
    if not any(holds(item) for item in items):
        return None
    if not isinstance(target, Called | Dict | List):
        return f"{opcode} puts a Lightning AttributeDict into a value the walk does not follow"
    was_sealed = target.sealed
    target.holds = True
    if was_sealed:
        return (
            f"{opcode} puts a Lightning AttributeDict into a container already handed on "
            "(what holds it may run code on it later)"
        )
    if isinstance(target, Called):
        name = _class_of(target) or "a computed class"
        if opcode.startswith("SETITEM"):
            if name not in DICT_SETITEM:
                return f"{opcode} hands a Lightning AttributeDict to the __setitem__ of {name}"
        else:
            return f"{opcode} hands a Lightning AttributeDict to a method of {name}"
    return None
