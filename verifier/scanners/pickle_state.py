"""What the unpickler looks up on the objects it builds, and when that calls the pickle's values.

Three opcodes make an unpickler look an attribute up on an object it built and call what it
finds: BUILD (`__setstate__`, called with the state), APPEND/APPENDS on an object that is not a
list (`extend`, or `append` per item) and ADDITEMS on one that is not a set (`add` per item). An
attribute lookup finds an entry of the instance's own `__dict__` before its class's methods, and
a class's `__getattr__` after them. So the call reaches a value the pickle chose, with arguments
the pickle chose (`torch.storage._load_from_bytes(payload)`: a nested `torch.load` out of the
walk's sight), whenever the pickle could give the object attributes before the lookup:

- the object was built already (BUILD's state dict or slot state names its attributes);
- a reconstructor set attributes from its arguments: torch's `_rebuild_from_type_v2` and
  `_rebuild_parameter_with_state` (their `state`), `copyreg._reconstructor(cls, base, state)`
  (`base.__init__(obj, state)` unless `base` is `object`), `types.SimpleNamespace(mapping)`
  (Python 3.13 takes attributes from a positional mapping);
- its class answers missing attributes from data: Lightning's `AttributeDict` returns its items;
- it is not an object the walk saw a call make: a class (BUILD's slot state would set *class*
  attributes with `setattr`), an object a persistent id names, a constant.

Savers write none of these (each object is built once, after its items; nothing builds the
results of those reconstructors), so the walk reports them rather than model the call.
`AttributeDict` is contained further: every attribute other code looks up on it and a dict
lacks is an item the pickle chose, so an `AttributeDict` (the class or an instance) handed to a
call, or held in a BUILD's state, at any depth of any container (pickle_holding.py follows it
through lists, sets, dictionaries whatever their keys, and filled objects), is reported too;
savers only put it in containers.
"""

from __future__ import annotations

from verifier.scanners.pickle_holding import holds as holds_attribute_dict
from verifier.scanners.pickle_holding import is_attribute_dict
from verifier.scanners.pickle_values import Called, Dict, Global

#: Reconstructors whose result carries attributes named by the pickle's arguments.
ATTRIBUTE_SETTERS = frozenset(
    {
        "torch._tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_parameter_with_state",
    }
)
RECONSTRUCTOR = "copyreg._reconstructor"
SIMPLE_NAMESPACE = "types.SimpleNamespace"
#: Calls that set attributes from one argument (its index): torch's `state`, Python 3.13's
#: `SimpleNamespace(mapping)`, and `copyreg._reconstructor`'s `base.__init__(obj, state)`.
ATTRIBUTE_ARGUMENT = {**dict.fromkeys(ATTRIBUTE_SETTERS, 3), SIMPLE_NAMESPACE: 0, RECONSTRUCTOR: 2}
#: Bases with which `copyreg._reconstructor(cls, base, state)` only copies a dict's items
#: (`dict.__init__(obj, state)`) or ignores `state` (`object`): what protocols 0 and 1 write.
COPYING_BASES = frozenset({"builtins.dict", "builtins.object"})


def _full(value: object) -> str | None:
    return value.full if isinstance(value, Global) else None


def _args(called: Called) -> tuple[object, ...]:
    return called.args if isinstance(called.args, tuple) else ()


def _chosen_attributes(target: Called) -> str | None:
    """Why `target` may carry attributes the pickle named; None when it cannot."""
    if target.built:
        return "an object the pickle built already (its state can name any attribute)"
    if is_attribute_dict(target):
        return "a Lightning AttributeDict (its attributes are items the pickle chose)"
    callee = _full(target.callee)
    args = _args(target)
    if callee in ATTRIBUTE_SETTERS:
        return f"the result of {callee}, which sets attributes from its arguments"
    if callee == RECONSTRUCTOR and (len(args) < 2 or _full(args[1]) != "builtins.object"):
        return f"the result of {RECONSTRUCTOR} with a base other than object"
    if callee == SIMPLE_NAMESPACE and args:
        return "a SimpleNamespace given a mapping of attributes"
    return None


def hook_attribute(state: object) -> str | None:
    """The first attribute named `__x__` that `state` would set on an instance, or None.

    Code looks some hooks up on the instance, where its `__dict__` answers first: NumPy's array
    coercion reads `__array_interface__` (then memory at the address it names: `pickle.load` of a
    masked array whose `fill_value` is a `SimpleNamespace` with one read address 0x41414141),
    `__array_struct__` and `__array__`; torch reads `__torch_function__`. Savers never give an
    instance an attribute named this way, so any such name is reported, not only those.
    """
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    for part in parts:
        if isinstance(part, Dict):
            for name in part.items:
                if len(name) > 4 and name.startswith("__") and name.endswith("__"):
                    return name
    return None


def build_problem(target: object, state: object) -> str | None:
    """Why BUILD on `target` with `state` could call a value of the pickle; None when not."""
    if holds_attribute_dict(state):
        return "a BUILD hands a Lightning AttributeDict to the object's code"
    if not isinstance(target, Called):
        # Pickle writes BUILD only after the call that made the object. On anything else (a
        # class, whose slot state would set class attributes; a persistent object) it is not
        # what a saver wrote, and the walk cannot tell what the object answers.
        return "a BUILD on a value no saver builds (not the result of a call)"
    why = _chosen_attributes(target)
    if why is not None:
        return f"a BUILD looks __setstate__ up on {why}"
    hook = hook_attribute(state)
    if hook is not None:
        return f"a BUILD gives an object the attribute {hook}, which code looks up on instances"
    return None


def lookup_problem(target: object, opcode: str) -> str | None:
    """Why APPEND(S) or ADDITEMS on `target` could call a value of the pickle; None when not.

    Lists and sets (which the walk does not follow) have their own methods and no attributes;
    an object built by a call is looked up, and may answer with what the pickle gave it.
    """
    if not isinstance(target, Called):
        return None
    why = _chosen_attributes(target)
    method = "add" if opcode == "ADDITEMS" else "extend or append"
    return None if why is None else f"{opcode} looks {method} up on {why}"


def call_problem(callee: object, args: object) -> str | None:
    """Why a call hands an `AttributeDict` to code, or sets a hook attribute; None if neither.

    Allowed: the class called itself, and `copyreg._reconstructor(cls, dict or object, state)`
    (how protocols 0 and 1 pickle a dict subclass or an object), which only copies items.
    """
    parts = args if isinstance(args, tuple) else (args,)
    if _full(callee) == RECONSTRUCTOR and len(parts) > 1 and _full(parts[1]) in COPYING_BASES:
        return None
    where = ATTRIBUTE_ARGUMENT.get(_full(callee) or "")
    if where is not None and len(parts) > where:
        hook = hook_attribute(parts[where])
        if hook is not None:
            return f"a call of {_full(callee)} gives an object the attribute {hook}"
    if any(holds_attribute_dict(part) for part in parts):
        called = _full(callee) or "a computed callable"
        return f"a call of {called} is handed a Lightning AttributeDict"
    return None
