"""Reconstructors that call what they are given, modelled on the walk's symbolic values.

A callable is dangerous because of what it does with the arguments an attacker chooses. A few
allowlisted reconstructors call one of their arguments:

- `torch._tensor._rebuild_from_type_v2(func, new_type, args, state)` runs `func(*args)`;
- numpy's random-state constructors (`numpy.random._pickle`), which every pickled
  `Generator`, `RandomState` and bit generator imports: `__bit_generator_ctor(x)` runs `x()`
  when `x` is a class (numpy writes one of its bit generator classes, or a name it looks up in
  a fixed dict); `__generator_ctor(x, ctor)` and `__randomstate_ctor(x, ctor)` run `ctor(x)`
  unless `x` is already a bit generator (numpy writes the bit generator itself).

Harmless for what their savers write, they would also run
`torch.storage._load_from_bytes(payload)` (a nested `torch.load` with `weights_only=False`)
for a crafted pickle, out of the walk's sight. So the walk treats the call they make as a
call of its own (bytes handed to a nested loader are scanned, a further reconstructor is
modelled in turn), and reports only what it cannot follow: a callable it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.scanners.pickle_values import OTHER, Called, Global, Str

BIT_GENERATOR_CTOR = "numpy.random._pickle.__bit_generator_ctor"
GENERATOR_CTORS = frozenset(
    {"numpy.random._pickle.__generator_ctor", "numpy.random._pickle.__randomstate_ctor"}
)
REBUILD_FROM_TYPE = "torch._tensor._rebuild_from_type_v2"
#: numpy's bit generator classes, as their pickles name them.
BIT_GENERATOR_CLASSES = frozenset(
    {
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
    }
)
#: Every reconstructor modelled here.
MODELLED = frozenset({BIT_GENERATOR_CTOR, REBUILD_FROM_TYPE, *GENERATOR_CTORS})


@dataclass(frozen=True)
class CallModel:
    """What one call of a modelled reconstructor does with its arguments."""

    #: The calls it makes: (callable, symbolic argument tuple).
    calls: tuple[tuple[object, object], ...] = ()
    #: Why the walk cannot follow it (a callable it could not read); None when it can.
    problem: str | None = None


def _describe(value: object) -> str:
    if isinstance(value, Global):
        return value.full
    if isinstance(value, Called):
        return f"the result of {_describe(value.callee)}(...)"
    return "a value the scanner could not read"


def _call_of(func: object, args: object, *, what: str) -> CallModel:
    """`func(*args)`: followed when `func` is an import, reported otherwise."""
    if isinstance(func, Global):
        return CallModel(calls=((func, args),))
    return CallModel(problem=f"it would call {_describe(func)} ({what})")


def _bit_generator_ctor(args: tuple[object, ...]) -> CallModel:
    cls = args[0] if args else Str("MT19937")
    if isinstance(cls, Str):
        return CallModel()  # a name looked up in numpy's fixed dict; anything else raises
    return _call_of(cls, (), what="as a bit generator class, with no arguments")


def _is_bit_generator(value: object) -> bool:
    """Whether `value` was built by one of numpy's bit generator classes or constructors."""
    if not isinstance(value, Called) or not isinstance(value.callee, Global):
        return False
    return value.callee.full in BIT_GENERATOR_CLASSES or value.callee.full == BIT_GENERATOR_CTOR


def _generator_ctor(args: tuple[object, ...]) -> CallModel:
    first = args[0] if args else Str("MT19937")
    if _is_bit_generator(first):
        return CallModel()  # Generator(bit_generator): the constructor is not called
    ctor = args[1] if len(args) > 1 else Global("numpy.random._pickle", "__bit_generator_ctor")
    return _call_of(ctor, (first,), what="as the bit generator constructor")


def model_call(callee: Global, args: object) -> CallModel | None:
    """What calling `callee(*args)` does with its arguments; None when it is not modelled.

    `args` is the walk's symbolic argument tuple (anything else: the walk could not read it).
    """
    if callee.full not in MODELLED:
        return None
    parts = args if isinstance(args, tuple) else None
    if parts is None:
        return CallModel(problem="its arguments could not be read")
    if callee.full == BIT_GENERATOR_CTOR:
        return _bit_generator_ctor(parts)
    if callee.full in GENERATOR_CTORS:
        return _generator_ctor(parts)
    func = parts[0] if parts else OTHER
    inner = parts[2] if len(parts) > 2 else ()
    return _call_of(func, inner, what="with the pickle's arguments")
