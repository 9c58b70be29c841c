"""`when:` expressions in CEL (Common Expression Language), evaluated with cel-python."""

from __future__ import annotations

import functools
import inspect
import logging
import re
import signal
import sys
import threading
import types
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


#: Longest expression accepted, in characters.
MAX_EXPRESSION_CHARS = 4096
#: Deepest nesting of brackets and parentheses (the parser recurses once per level).
MAX_EXPRESSION_DEPTH = 32
#: Deepest nesting of comprehension macros (`all`, `exists`, `map`, ...): each level multiplies
#: the evaluation cost by the length of a list.
MAX_COMPREHENSION_NESTING = 2
#: Longest evaluation of one expression, in seconds, when evaluated on the main thread.
EVALUATION_SECONDS = 5.0
#: The same while a policy loads (over an evidence document with no facts: near instant).
LOAD_EVALUATION_SECONDS = 1.0

_MACRO_CALL = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*$")
_STRING_LITERAL = re.compile(
    "[rR]?(?:'{3}[\\s\\S]*?'{3}|\"{3}[\\s\\S]*?\"{3}"
    "|'(?:[^'\\\\\\n]|\\\\.)*'|\"(?:[^\"\\\\\\n]|\\\\.)*\")"
)


def check_bounds(text: str) -> None:
    """Refuse an expression over the size, depth or comprehension-nesting caps.

    Raises:
        ValueError: a cap is exceeded.
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression of {len(text)} characters, over {MAX_EXPRESSION_CHARS}")
    bare = _STRING_LITERAL.sub('""', text)
    stack: list[bool] = []  # per open bracket: whether it opens a comprehension macro
    for i, char in enumerate(bare):
        if char in "([{":
            stack.append(char == "(" and _MACRO_CALL.search(bare, max(0, i - 64), i) is not None)
            if len(stack) > MAX_EXPRESSION_DEPTH:
                raise ValueError(f"brackets nested deeper than {MAX_EXPRESSION_DEPTH} levels")
            if sum(stack) > MAX_COMPREHENSION_NESTING:
                raise ValueError(
                    f"comprehensions (all, exists, map, ...) nested deeper than "
                    f"{MAX_COMPREHENSION_NESTING} levels"
                )
        elif char in ")]}" and stack:
            stack.pop()


def compile_expression(text: str) -> CelProgram:
    """Compile `text`, once it is within the size, depth and nesting caps.

    Raises:
        ValueError: the expression is over a cap, or does not parse (with the parser's pointer
            to where).
    """
    from celpy.celparser import CELParseError

    check_bounds(text)
    environment = _environment()
    try:
        ast = environment.compile(text)
    except CELParseError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"CEL expression does not compile: {detail}") from None
    except RecursionError:
        raise ValueError("CEL expression nested too deeply to compile") from None
    return CelProgram(text=text, runner=environment.program(ast))


#: Where cel-python and its parser live: the calls the stopwatch refuses once time is up.
_EVALUATOR_FILES = re.compile(r"[/\\](?:celpy|lark)[/\\]")
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


#: Once time is up, how often the timer hooks the evaluation again (see `_Stopwatch`).
_REARM = 0.05


class _Deadline(BaseException):
    """Raised inside an evaluation that ran out of time (not an Exception: cel-python logs and
    re-raises those, and nothing may turn it into a value)."""


class _Stopwatch:
    """Stops an evaluation after `seconds`, on the main thread (where signals arrive).

    CEL absorbs errors into values (`true || error` is true), and cel-python catches the
    exceptions of each step, so one exception from the timer is not enough: once the time is
    up, every Python call in the evaluation raises until it unwinds (a profile hook that costs
    nothing before then).

    CPython removes a profile hook that raises, and a raise can be swallowed: a dunder method
    such as lark's `Token.__eq__` runs inside dictionary lookups that discard errors, after
    which the evaluation went on unhooked to its end (409 s, once). So dunder methods never
    raise, and the timer repeats every `_REARM` seconds until stopped, hooking again each time.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._armed = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        self._previous_handler: Any = None
        self._previous_profile: Any = None

    def _refuse(self, frame: types.FrameType, event: str, arg: object) -> None:
        # Only the evaluator's own functions, and never a generator (which a garbage
        # collection may close anywhere): an exception there would be unraisable.
        code = frame.f_code
        if (
            event == "call"
            and not code.co_flags & _GENERATOR_FLAGS
            and not code.co_name.startswith("__")
            and _EVALUATOR_FILES.search(code.co_filename) is not None
        ):
            raise _Deadline()

    def _on_alarm(self, signum: int, frame: object) -> None:
        self.fired = True
        sys.setprofile(self._refuse)  # the next call into the evaluator raises

    def start(self) -> None:
        """Arm the timer."""
        if self._armed:
            self._previous_profile = sys.getprofile()
            self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds, _REARM)

    def stop(self) -> None:
        """Disarm the timer and the hook (call first thing after the evaluation)."""
        if self._armed:  # the timer first: an alarm after the hook is removed would hook again
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous_handler)
            sys.setprofile(self._previous_profile)


def evaluate(
    program: CelProgram, evidence: Mapping[str, Any], *, seconds: float = EVALUATION_SECONDS
) -> bool:
    """Evaluate over the evidence document: each top-level field is a variable, and so is
    `evidence` (the whole document). On the main thread, an evaluation longer than `seconds`
    is stopped.

    Raises:
        CelEvaluationError: the expression raised, ran out of time, or did not give a boolean.
    """
    from celpy import celtypes
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    activation = {name: json_to_cel(value) for name, value in evidence.items()}
    activation["evidence"] = json_to_cel(dict(evidence))
    stopwatch = _Stopwatch(seconds)
    outcome: BaseException | None = None
    result: Any = None
    stopwatch.start()
    try:
        result = program.runner.evaluate(activation)
    except (_Deadline, CELEvalError, RecursionError) as exc:
        outcome = exc
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
        outcome = exc
    finally:
        sys.setprofile(None)  # a C call: the hook raises on Python calls only
        stopwatch.stop()
    if stopwatch.fired:
        raise CelEvaluationError(f"evaluation took longer than {seconds:g} s: stopped")
    if isinstance(outcome, CELEvalError):
        raise CelEvaluationError(_describe(outcome))
    if isinstance(outcome, RecursionError):
        raise CelEvaluationError("evaluation nested too deeply")
    if outcome is not None:
        raise CelEvaluationError(f"{type(outcome).__name__}: {outcome}")
    if isinstance(result, CELEvalError):
        raise CelEvaluationError(_describe(result))
    if not isinstance(result, celtypes.BoolType):
        raise CelEvaluationError(f"expected true or false, got {type(result).__name__} {result}")
    return bool(result)


def _describe(exc: Exception) -> str:
    args = exc.args
    return str(args[0]) if args else "evaluation failed"
