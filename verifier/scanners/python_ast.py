"""What a Python file imports and calls, from its syntax tree (the file is never imported).

Names are resolved through imports (`from subprocess import Popen as P`), simple assignments
(`run = os.system`, `f = getattr(os, "system")`) and constant `getattr`/`import_module` calls,
then checked wherever they are used, called or not (`map(os.system, cmds)` runs commands too).
Whatever picks a module, attribute or global by a name computed at run time (`getattr` with a
non-constant name, `importlib.import_module(x)`, `__import__`, `sys.modules[...]`,
`globals()[...]`, `vars()`, `__builtins__`, `__dict__`, `operator.attrgetter`) is dynamic
dispatch: the analysis cannot know what it reaches, so it is reported as dangerous.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Callables that start processes, evaluate or build code, load native code or pickles, or open
#: sockets: no modeling file needs them. Referencing one (called or not) is reported.
DANGEROUS = frozenset(
    {
        "os.system",
        "os.popen",
        "os.execv",
        "os.execve",
        "os.execl",
        "os.execle",
        "os.execlp",
        "os.execlpe",
        "os.execvp",
        "os.execvpe",
        "os.spawnl",
        "os.spawnle",
        "os.spawnlp",
        "os.spawnv",
        "os.spawnve",
        "os.spawnvp",
        "os.posix_spawn",
        "os.posix_spawnp",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "subprocess.run",
        "subprocess.call",
        "subprocess.check_call",
        "subprocess.check_output",
        "subprocess.Popen",
        "subprocess.getoutput",
        "subprocess.getstatusoutput",
        "pty.spawn",
        "eval",
        "exec",
        "compile",
        "__import__",
        "builtins.__import__",
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "marshal.loads",
        "marshal.load",
        "pickle.loads",
        "pickle.load",
        "pickle.Unpickler",
        "_pickle.loads",
        "_pickle.load",
        "dill.loads",
        "dill.load",
        "cloudpickle.loads",
        "cloudpickle.load",
        "types.CodeType",
        "types.FunctionType",
        "ctypes.CDLL",
        "ctypes.PyDLL",
        "ctypes.cdll.LoadLibrary",
        "ctypes.pydll.LoadLibrary",
        "ctypes.windll.LoadLibrary",
        "socket.socket",
        "socket.create_connection",
        "webbrowser.open",
        "runpy.run_path",
        "runpy.run_module",
        "code.interact",
        "code.InteractiveInterpreter",
        "shutil.rmtree",
    }
)
#: Calls that fetch or reach a module, attribute or global by a name: dynamic dispatch unless
#: the name is a constant (then it is resolved and checked like any other name).
_BY_NAME = {
    "getattr": 1,
    "builtins.getattr": 1,
    "setattr": 1,
    "delattr": 1,
    "importlib.import_module": 0,
    "importlib.__import__": 0,
    "__import__": 0,
    "builtins.__import__": 0,
    "operator.attrgetter": 0,
    "operator.methodcaller": 0,
    "pkgutil.resolve_name": 0,
}
#: Names that hand out every global or module by name: any use is dynamic dispatch.
_NAMESPACES = frozenset(
    {
        "globals",
        "locals",
        "vars",
        "sys.modules",
        "__builtins__",
        "builtins.__dict__",
        "sys._getframe",
        "inspect.currentframe",
        "importlib.util.spec_from_file_location",
        "importlib.machinery.SourceFileLoader",
        "importlib.reload",
    }
)
#: Attributes that lead to globals, frames or code of whatever object holds them.
_INTERNAL_ATTRIBUTES = frozenset(
    {
        "__globals__",
        "__builtins__",
        "__subclasses__",
        "__code__",
        "__import__",
        "__loader__",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "gi_frame",
        "cr_frame",
        "tb_frame",
        "co_code",
    }
)
#: Modules whose attributes run commands or code: a computed attribute of one is dangerous.
_POWERFUL_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "builtins",
        "__builtins__",
        "sys",
        "importlib",
        "ctypes",
        "pty",
        "socket",
        "shutil",
        "runpy",
        "code",
        "marshal",
        "pickle",
        "_pickle",
        "dill",
        "cloudpickle",
        "types",
        "operator",
        "inspect",
    }
)
_ATTRIBUTE_CALLS = frozenset({"getattr", "builtins.getattr", "setattr", "delattr"})
#: Network clients: reported in the summary (a modeling file that downloads is worth knowing
#: about), not as dangerous on their own.
_NETWORK_PREFIXES = ("urllib.request.", "requests.", "httpx.", "http.client.", "aiohttp.")


@dataclass(frozen=True)
class Use:
    """A dangerous or dynamic use of a name, at a line."""

    name: str
    line: int
    dynamic: bool


@dataclass
class PythonFacts:
    """What a file imports, the dangerous names it uses and its dynamic dispatch."""

    imports: set[str] = field(default_factory=set)
    network: set[str] = field(default_factory=set)
    uses: list[Use] = field(default_factory=list)
    #: `getattr(obj, name)` with a computed name on an ordinary object (common in modeling
    #: code: `getattr(self, f"layer_{i}")`): counted, not reported one by one.
    computed_attributes: int = 0


def analyse(tree: ast.Module) -> PythonFacts:
    """Imports, dangerous names (called or referenced) and dynamic dispatch in `tree`."""
    facts = PythonFacts()
    aliases = _imports(tree, facts)
    _assignments(tree, aliases)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _call(node, aliases, facts)
        elif isinstance(node, ast.Attribute) and node.attr in _INTERNAL_ATTRIBUTES:
            facts.uses.append(Use(f"attribute {node.attr}", node.lineno, dynamic=True))
        if isinstance(node, ast.Name | ast.Attribute):
            name = resolve(node, aliases)
            if name is None:
                continue
            if name in DANGEROUS:
                facts.uses.append(Use(name, node.lineno, dynamic=False))
            elif name in _NAMESPACES:
                facts.uses.append(Use(name, node.lineno, dynamic=True))
            elif name.startswith(_NETWORK_PREFIXES):
                facts.network.add(name)
    return facts


def _imports(tree: ast.Module, facts: PythonFacts) -> dict[str, str]:
    """Local names bound by imports, mapped to the dotted names they stand for."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                facts.imports.add(alias.name)
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            facts.imports.add(module)
            for alias in node.names:
                if alias.name == "*":
                    # Every public name of the module, unseen: as dynamic as a getattr.
                    facts.uses.append(Use(f"from {module} import *", node.lineno, dynamic=True))
                    continue
                target = f"{module}.{alias.name}" if not node.level else alias.name
                aliases[alias.asname or alias.name] = target
    return aliases


def _assignments(tree: ast.Module, aliases: dict[str, str]) -> None:
    """`run = os.system` and `run = getattr(os, "system")` make `run` stand for os.system."""
    for _ in range(3):  # chains of a few assignments (a = os; b = a.system)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            name = resolve(node.value, aliases)
            if name is None and isinstance(node.value, ast.Call):
                name = _constant_lookup(node.value, aliases)
            if name is None:
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id not in aliases:
                    aliases[target.id] = name


def resolve(node: ast.expr, aliases: Mapping[str, str]) -> str | None:
    """The dotted name an expression stands for (`sp.Popen` -> `subprocess.Popen`), if any."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):
        base = _constant_lookup(node, aliases)
        if base is None:
            return None
        parts.append(base)
    elif isinstance(node, ast.Name):
        parts.append(aliases.get(node.id, node.id))
    else:
        return None
    return ".".join(reversed(parts))


def _constant_lookup(call: ast.Call, aliases: Mapping[str, str]) -> str | None:
    """`getattr(os, "system")` -> `os.system`; `import_module("os")` -> `os`."""
    callee = resolve(call.func, aliases)
    position = _BY_NAME.get(callee or "")
    if position is None or len(call.args) <= position:
        return None
    name = fold(call.args[position])
    if name is None:
        return None
    if position == 0:
        return name
    owner = resolve(call.args[0], aliases)
    return f"{owner}.{name}" if owner else None


def _call(node: ast.Call, aliases: Mapping[str, str], facts: PythonFacts) -> None:
    callee = resolve(node.func, aliases)
    if callee is None:
        return
    position = _BY_NAME.get(callee)
    if position is not None:
        if len(node.args) > position and fold(node.args[position]) is not None:
            looked_up = _constant_lookup(node, aliases)
            if looked_up is not None and position == 0 and callee != "operator.attrgetter":
                facts.imports.add(looked_up)
            if looked_up in DANGEROUS:
                facts.uses.append(Use(looked_up, node.lineno, dynamic=False))
            elif looked_up is not None and _internal(looked_up.rsplit(".", 1)[-1]):
                facts.uses.append(Use(looked_up, node.lineno, dynamic=True))
        elif callee in _ATTRIBUTE_CALLS and not _dangerous_attribute_call(node, aliases):
            facts.computed_attributes += 1
        else:
            facts.uses.append(Use(f"{callee} with a computed name", node.lineno, dynamic=True))
    elif callee == "torch.load" and _passes_false(node, "weights_only"):
        facts.uses.append(Use("torch.load(weights_only=False)", node.lineno, dynamic=False))


def _dangerous_attribute_call(call: ast.Call, aliases: Mapping[str, str]) -> bool:
    """A computed attribute of a module that runs code, or a name with a private part."""
    if len(call.args) < 2:
        return True
    owner = resolve(call.args[0], aliases)
    if owner is not None and owner.split(".")[0] in _POWERFUL_MODULES:
        return True
    return any(
        isinstance(child, ast.Constant)
        and isinstance(child.value, str)
        and ("__" in child.value or child.value.startswith("_"))
        for child in ast.walk(call.args[1])
    )


def fold(node: ast.expr) -> str | None:
    """The string an expression of constants spells (`"ev" + "al"`, `"".join(["o", "s"])`,
    `"xxsystem"[2:]`, `chr(101)`, `"EVAL".lower()`, f-strings of constants), else None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = fold(node.left), fold(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = [fold(value) for value in node.values]
        return "".join(p for p in parts if p is not None) if None not in parts else None
    if isinstance(node, ast.FormattedValue) and node.format_spec is None:
        return fold(node.value)
    if isinstance(node, ast.Subscript):
        return _fold_subscript(node)
    if isinstance(node, ast.Call):
        return _fold_call(node)
    return None


def _fold_subscript(node: ast.Subscript) -> str | None:
    text = fold(node.value)
    index = node.slice
    if text is None:
        return None
    if isinstance(index, ast.Slice):
        bounds = [index.lower, index.upper, index.step]
        values = [None if b is None else _integer(b) for b in bounds]
        if any(b is not None and v is None for b, v in zip(bounds, values, strict=True)):
            return None
        if values[2] == 0:
            return None
        return text[slice(*values)]
    position = _integer(index)
    if position is not None and -len(text) <= position < len(text):
        return text[position]
    return None


def _integer(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _integer(node.operand)
        return -value if value is not None else None
    return None


def _fold_call(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name) and node.func.id == "chr" and len(node.args) == 1:
        code = node.args[0]
        if isinstance(code, ast.Constant) and isinstance(code.value, int):
            return chr(code.value) if 0 <= code.value < 0x110000 else None
        return None
    if not isinstance(node.func, ast.Attribute):
        return None
    method, receiver = node.func.attr, fold(node.func.value)
    if receiver is None:
        return None
    if method == "join" and len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple):
        parts = [fold(item) for item in node.args[0].elts]
        return receiver.join(p for p in parts if p is not None) if None not in parts else None
    args = [fold(arg) for arg in node.args]
    if None in args or node.keywords:
        return None
    if method in ("lower", "upper", "strip", "title") and not args:
        return str(getattr(receiver, method)())
    if method == "replace" and len(args) == 2:
        return receiver.replace(str(args[0]), str(args[1]))
    return None


def _internal(attribute: str) -> bool:
    return attribute in _INTERNAL_ATTRIBUTES


def _passes_false(call: ast.Call, keyword: str) -> bool:
    return any(
        k.arg == keyword and isinstance(k.value, ast.Constant) and k.value.value is False
        for k in call.keywords
    )
