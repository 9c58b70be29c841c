"""TorchScript archives (`torch.jit.save`): code to analyse, pickles read by TorchScript itself.

`torch.load` hands a zip whose records include `constants.pkl` to `torch.jit.load`
(`torch.serialization._is_torchscript_zip`). TorchScript's C++ unpickler then reads the
archive's pickles (`data.pkl`, `constants.pkl`, the `*.debug_pkl` and `traced_inputs.pkl`
records): it never imports Python; `__torch__.*` names are classes compiled from the archive's
own `code/` folder and `torch.jit._pickle.*` are its list and type-tag builders. So those names
are not Python imports there, and the question becomes what the code does: it runs when the
model is called, and a class's `__setstate__` runs while the archive is loaded. Its calls are
read from the syntax tree (TorchScript is Python syntax; nothing is imported or compiled) and
reported: what it calls (`TORCHSCRIPT-CODE`), and operators that reach files or the network
(`TORCHSCRIPT-DANGEROUS-CALL`).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from verifier.model import Finding, Severity
from verifier.scanners.interface import ScanContext, ScanStream

#: Largest code record analysed, and most tokens (as for remote code: `ast.parse` holds about
#: 1 KB per node).
MAX_CODE = 4 << 20
MAX_CODE_TOKENS = 200_000
_TOKEN = re.compile(r"\w+|[^\w\s]")
#: Calls listed in the summary's evidence.
MAX_LISTED = 60

#: Names TorchScript's unpickler resolves itself (never a Python import) in an archive.
TORCHSCRIPT_PICKLE_NAMES = frozenset(
    f"torch.jit._pickle.{name}"
    for name in (
        "build_intlist",
        "build_doublelist",
        "build_boollist",
        "build_tensorlist",
        "build_tensor_from_id",
        "restore_type_tag",
    )
)

#: Operators that read or write files, or talk to other processes (every TorchScript schema
#: with a file name argument, and the collective-communication namespaces), by operator name.
DANGEROUS_OPERATORS = frozenset({"from_file", "save", "load", "load_tensor", "_load_for_mobile"})
DANGEROUS_NAMESPACES = frozenset({"_c10d_functional", "c10d", "c10d_functional", "symm_mem"})


def archive_folder(names: list[str]) -> str | None:
    """The archive's folder when its records make `torch.load` dispatch to `torch.jit.load`.

    PyTorch's reader takes the folder from the first record and lists the rest relative to it.
    """
    if not names or "/" not in names[0]:
        return None
    folder = names[0].split("/", 1)[0]
    return folder if f"{folder}/constants.pkl" in names else None


def is_torchscript_name(full: str) -> bool:
    """Whether TorchScript's unpickler resolves `full` itself (from the archive or built in)."""
    return full.startswith("__torch__.") or full in TORCHSCRIPT_PICKLE_NAMES


@dataclass
class TorchScriptArchive:
    """One `torch.jit.save` archive: which records are its code, and what the code calls."""

    folder: str
    calls: set[str] = field(default_factory=set)
    classes: int = 0
    files: int = 0

    def is_code(self, name: str) -> bool:
        """Whether the record is TorchScript source the loader compiles."""
        return name.startswith(f"{self.folder}/code/") and name.endswith(".py")

    def is_pickle(self, name: str) -> bool:
        """Whether TorchScript's own unpickler reads the record (`extra/` files are handed
        to the caller as bytes, to be read by whatever the caller uses)."""
        if name.startswith(f"{self.folder}/extra/"):
            return False
        return name.startswith(f"{self.folder}/") and name.endswith((".pkl", ".debug_pkl"))

    def read_code(self, stream: ScanStream, ctx: ScanContext, *, member: str) -> Iterator[Finding]:
        """Analyse one code record; report what cannot be parsed and dangerous operators."""
        self.files += 1
        tree, why = _parse(stream)
        if tree is None:
            yield ctx.finding(
                "TORCHSCRIPT-CODE-UNPARSED",
                Severity.HIGH,
                f"TorchScript code was not analysed: {why}",
                member=member,
            )
            return
        reported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                self.classes += 1
            elif isinstance(node, ast.Call):
                name = _dotted(node.func)
                if name is not None:
                    self.calls.add(name)
            # Referenced, not only called: an alias (`f = torch.from_file`) or a constant
            # getattr (`getattr(torch, "from_file")`) reaches the operator all the same.
            name = _reference(node)
            if name is None or not _dangerous(name) or name in reported:
                continue
            if any(seen.startswith(f"{name}.") for seen in reported):
                continue  # the inner part of a chain already reported (`ops.aten.save` of
                # `ops.aten.save.default`)
            reported.add(name)
            yield ctx.finding(
                "TORCHSCRIPT-DANGEROUS-CALL",
                Severity.HIGH,
                f"TorchScript code uses {name} (line {getattr(node, 'lineno', 0)}): it reads "
                "or writes files or talks to other processes when the model runs",
                member=member,
                evidence=name,
            )

    def summary(self, ctx: ScanContext, *, member: str | None) -> Finding:
        """TORCHSCRIPT-CODE: the archive carries code; what it calls, for the reviewer."""
        listed = sorted(self.calls)
        evidence = ", ".join(listed[:MAX_LISTED])
        if len(listed) > MAX_LISTED:
            evidence += f", ... ({len(listed) - MAX_LISTED} more)"
        return ctx.finding(
            "TORCHSCRIPT-CODE",
            Severity.MEDIUM,
            f"TorchScript archive ({self.files} code file(s), {self.classes} class(es)): its "
            "code runs when the model is called, and __setstate__ methods when it is loaded; "
            f"it calls {len(listed)} distinct function(s) and operator(s)",
            member=member,
            evidence=evidence or None,
        )


def _parse(stream: ScanStream) -> tuple[ast.Module | None, str]:
    if stream.size > MAX_CODE:
        return None, f"larger than {MAX_CODE} bytes"
    data = stream.read(MAX_CODE + 1)
    if len(data) > MAX_CODE:
        return None, f"larger than {MAX_CODE} bytes"
    source = data.decode("utf-8", errors="replace")
    tokens = sum(1 for _ in itertools.islice(_TOKEN.finditer(source), MAX_CODE_TOKENS + 1))
    if tokens > MAX_CODE_TOKENS:
        return None, f"more than {MAX_CODE_TOKENS} tokens"
    try:
        return ast.parse(source), ""
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return None, f"it does not parse ({type(exc).__name__})"


#: The global names TorchScript's serialized code calls through.
_NAMESPACES = frozenset({"torch", "ops", "__torch__", "math"})


def _dotted(node: ast.expr) -> str | None:
    """A call's name: `torch.add`, `ops.prim.RaiseException`, `__torch__.M`, `len`.

    A method called on a value (`(self.l).forward(x)`, `_0.forward(x)`) is named by the
    method alone: `.forward`.
    """
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and (not parts or node.id in _NAMESPACES):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return f".{parts[0]}" if parts else None


def _reference(node: ast.AST) -> str | None:
    """The dotted name an attribute chain or a constant `getattr` stands for."""
    if isinstance(node, ast.Attribute):
        return _dotted(node)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ):
        base = _dotted(ast.Attribute(value=node.args[0], attr="_", ctx=ast.Load()))
        return None if base is None else f"{base[:-2]}.{node.args[1].value}"
    return None


def _dangerous(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "" and parts[-1] == "from_file":
        return True  # a storage or tensor type's from_file, reached through a value
    if parts[0] not in ("torch", "ops") or len(parts) < 2:
        return False
    # `torch.from_file`, `ops.aten.save.default`, `torch.ops.debugprims.load_tensor`, ...
    if any(part in DANGEROUS_OPERATORS for part in parts[1:]):
        return True
    namespace = parts[2] if parts[:2] == ["torch", "ops"] and len(parts) > 2 else parts[1]
    return namespace in DANGEROUS_NAMESPACES
