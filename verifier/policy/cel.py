"""`when:` expressions in CEL (Common Expression Language), evaluated with cel-python."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# cel-python logs every evaluation step at debug level; that is noise in verifier's -v output.
for _name in ("celpy", "Evaluator", "NameContainer", "Environment"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@functools.cache
def _environment() -> Any:
    """The CEL environment, built on first use: building its parser takes a fifth of a second,
    which policies without `when:` should not pay at every start."""
    import celpy

    return celpy.Environment()


@dataclass(frozen=True, eq=False)
class CelProgram:
    """A compiled expression and its text."""

    text: str
    runner: Any


class CelEvaluationError(Exception):
    """An expression raised or gave something other than true or false."""


def compile_expression(text: str) -> CelProgram:
    """Compile `text`.

    Raises:
        ValueError: the expression does not parse, with the parser's pointer to where.
    """
    from celpy.celparser import CELParseError

    environment = _environment()
    try:
        ast = environment.compile(text)
    except CELParseError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"CEL expression does not compile: {detail}") from None
    return CelProgram(text=text, runner=environment.program(ast))


def evaluate(program: CelProgram, evidence: Mapping[str, Any]) -> bool:
    """Evaluate over the evidence document: each top-level field is a variable, and so is
    `evidence` (the whole document).

    Raises:
        CelEvaluationError: the expression raised or did not give a boolean.
    """
    from celpy import celtypes
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    activation = {name: json_to_cel(value) for name, value in evidence.items()}
    activation["evidence"] = json_to_cel(dict(evidence))
    try:
        result = program.runner.evaluate(activation)
    except CELEvalError as exc:
        raise CelEvaluationError(_describe(exc)) from None
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
        raise CelEvaluationError(f"{type(exc).__name__}: {exc}") from None
    if isinstance(result, CELEvalError):
        raise CelEvaluationError(_describe(result))
    if not isinstance(result, celtypes.BoolType):
        raise CelEvaluationError(f"expected true or false, got {type(result).__name__} {result}")
    return bool(result)


def _describe(exc: Exception) -> str:
    args = exc.args
    return str(args[0]) if args else "evaluation failed"
