"""Lightning classes a pickle may import (`.ckpt` files, `Fabric.save`), argued in the docs.

A Lightning checkpoint is `torch.save` of a dictionary whose contents are torch's and the
user's; the one Lightning class real files carry is `AttributeDict`, the `dict` subclass that
Lightning's `save_hyperparameters` and Fabric's documented `state = AttributeDict(...)` use, left
as it is inside the state `Fabric.save` writes. verifier never imports Lightning: the names are
written out here (Lightning 2.6, under the `lightning` package and the older `pytorch_lightning`
and `lightning_fabric` names), and `tests/scanners/test_lightning_allowlist.py` compares them with
the installed Lightning and pins the code argued.

The argument: `AttributeDict` is a `dict` with `__getattr__` (an item, else `AttributeError`),
`__setattr__` (sets an item), `__delattr__` and `__repr__`; no `__new__`, `__init__`,
`__reduce__` or `__setstate__` of its own. `NEWOBJ` is `dict.__new__`, `SETITEMS` fills it,
savers never BUILD it. Its `__getattr__` turns any attribute a dict lacks into an item the
pickle chose, so the walk contains it (`pickle_state.py`): a BUILD, APPEND(S) or ADDITEMS on an
`AttributeDict`, and an `AttributeDict` handed to a call or held in a BUILD's state, are reported.
"""

from __future__ import annotations

#: `AttributeDict` wherever a checkpoint may name it: Lightning's own, and Fabric's it extends.
ATTRIBUTE_DICTS: frozenset[str] = frozenset(
    [
        "lightning.pytorch.utilities.parsing.AttributeDict",
        "lightning.fabric.utilities.data.AttributeDict",
        "pytorch_lightning.utilities.parsing.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
    ]
)

LIGHTNING_GLOBALS: frozenset[str] = ATTRIBUTE_DICTS
