"""transformers Trainer classes a pickle may import (`training_args.bin`), argued in the docs.

Every `transformers.Trainer` checkpoint holds `training_args.bin`: `torch.save(self.args)`, a
pickle of `TrainingArguments` with its enums, its `AcceleratorConfig` and the accelerate
`PartialState` its cached device came from. verifier never imports transformers or accelerate:
the names are written out here (transformers 5.25, accelerate 1.x), and
`tests/scanners/test_transformers_allowlist.py` compares them with the installed libraries (an
enum a `TrainingArguments` or `Seq2SeqTrainingArguments` field gains or loses fails the test)
and checks, class by class, what the argument below rests on. Other transformers classes
(models, tokenizers, model configs, the watermarking and compile configs a `GenerationConfig`
may hold) and older paths stay unknown (high), never allowed by pattern.

The argument: unpickling runs `cls(*args)` (`REDUCE`), `cls.__new__(cls, *args)` (`NEWOBJ`)
and, for `BUILD`, looks up `__setstate__` (through `__getattr__` when the class has one), then
updates `__dict__` or calls `setattr` with the state the file's author chose.
- The enums are `str` enums with members: `cls(value)` is a lookup of `value` among the
  members (`Enum.__new__`), then `_missing_` (`Enum`'s, or transformers' `ExplicitEnum`'s,
  which raises `ValueError` naming the value); more arguments ask for the functional API,
  which refuses to extend an enum with members (`TypeError`) before creating anything.
- The dataclasses, `GenerationConfig` and `PartialState` define no `__new__`, `__reduce__` or
  `__setstate__`:
  `NEWOBJ` is `object.__new__` (no `__init__`, no `__post_init__`), `BUILD` updates
  `__dict__`; their data descriptors are properties without setters (a `setattr` of one
  raises). `PartialState.__getattr__` (reached by the `__setstate__` lookup) only raises
  `AttributeError`. `GenerationConfig.__hash__` and `__eq__` serialise it (a deep copy, `str`,
  `json.dumps`) when a pickle makes it a dict key: docs/scanners.md argues what that can call.
"""

from __future__ import annotations

#: The enums `TrainingArguments` fields hold (in this release and, for `FSDPOption`, in
#: transformers 4), and the distributed type of accelerate's state.
TRANSFORMERS_TRAINING_ENUMS: frozenset[str] = frozenset(
    [
        "transformers.debug_utils.DebugOption",
        "transformers.trainer_utils.HubStrategy",
        "transformers.trainer_utils.IntervalStrategy",
        "transformers.trainer_utils.SaveStrategy",
        "transformers.trainer_utils.SchedulerType",
        "transformers.training_args.OptimizerNames",
        "accelerate.utils.dataclasses.DistributedType",
        # What `fsdp` held in transformers 4 (a list of options; 5 keeps a string and reads
        # the list as a legacy value): an enum of the installed release, checked as the others.
        "transformers.trainer_utils.FSDPOption",
    ]
)

#: The argument classes: rebuilt by `object.__new__` and a `__dict__` update.
TRANSFORMERS_TRAINING_CLASSES: frozenset[str] = frozenset(
    [
        "transformers.training_args.TrainingArguments",
        # Seq2SeqTrainer's arguments, and the GenerationConfig they may hold.
        "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
        "transformers.generation.configuration_utils.GenerationConfig",
        "transformers.trainer_pt_utils.AcceleratorConfig",
        "accelerate.state.PartialState",
    ]
)

TRANSFORMERS_TRAINING_GLOBALS: frozenset[str] = (
    TRANSFORMERS_TRAINING_ENUMS | TRANSFORMERS_TRAINING_CLASSES
)
