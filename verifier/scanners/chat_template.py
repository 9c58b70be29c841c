"""Chat templates (Jinja): parsed to an AST, never rendered, and checked for sandbox escapes.

Runtimes render a model's chat template with Jinja, some of them without Jinja's sandbox
(llama-cpp-python before 0.2.72, CVE-2024-34359). A template that reaches a dunder attribute
(`().__class__.__base__.__subclasses__()`) or a frame (`gi_frame.f_globals`) runs code there.
The checks below look for every way a template can reach such an attribute:

- `.attr` and `['key']` naming a private or dunder attribute, or a frame/code attribute;
- the `attr` filter, and `attribute=` arguments of `map`, `selectattr`, `sort`, ...;
- keys built at render time (concatenation, string filters and methods, macro output,
  variables assigned from them, strings the model supplies such as `bos_token`);
- `str.format`, which reads attributes itself (`"{0.__class__}".format(x)`);
- `include`, `import`, `extends`, which read other templates (files) through the loader.

Normal chat templates (Llama 3, ChatML, Mistral, Gemma, DeepSeek, Phi) use none of these.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass

import jinja2
import jinja2.ext
import jinja2.nodes as nodes
from jinja2.parser import Parser

#: Largest template analysed; a larger one is reported instead of parsed.
MAX_TEMPLATE_CHARS = 1 << 20

#: Attributes that lead to frames, code or globals without an underscore (Jinja's sandbox
#: refuses them too), and names older Pythons used for the same.
_FRAME_ATTRIBUTES = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "func_globals",
        "func_code",
        "im_func",
        "im_self",
        "im_class",
        "mro",
    }
)
_FORMAT_METHODS = frozenset({"format", "format_map"})
#: Filters whose `attribute=` argument is looked up on each item.
_ATTRIBUTE_FILTERS = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
#: Filters taking the attribute name positionally: filter -> index among the arguments
#: after the value (`sort(reverse, case_sensitive, attribute)`, `sum(attribute, start)`, ...).
#: Jinja resolves these names with `getitem`, which falls back to `getattr`, dotted parts too.
_POSITIONAL_ATTRIBUTE = {
    "selectattr": 0,
    "rejectattr": 0,
    "groupby": 0,
    "sum": 0,
    "sort": 2,
    "unique": 1,
    "min": 1,
    "max": 1,
}
#: Names Jinja binds itself whose values are text the template wrote: `self.<block>()` renders
#: a block, `caller()` a call block's body, `varargs`/`kwargs` what a macro's callers passed.
_TEMPLATE_TEXT_NAMES = frozenset({"self", "caller", "varargs", "kwargs", "super"})
#: Filters and string methods that build new strings (a key built with them is unknown).
_STRING_BUILDERS = frozenset(
    {
        "join",
        "format",
        "format_map",
        "replace",
        "string",
        "lower",
        "upper",
        "title",
        "capitalize",
        "center",
        "trim",
        "strip",
        "lstrip",
        "rstrip",
        "reverse",
        "urlencode",
        "striptags",
        "indent",
        "wordwrap",
        "truncate",
        "swapcase",
        "casefold",
        "zfill",
        "ljust",
        "rjust",
        "translate",
        "decode",
        "encode",
        "removeprefix",
        "removesuffix",
        "expandtabs",
        "random",
        "split",
        "rsplit",
        "partition",
        "rpartition",
        "splitlines",
        "tojson",
        "pprint",
        "urlize",
        "xmlattr",
        "filesizeformat",
        "escape",
        "e",
        "forceescape",
    }
)
_DUNDERISH = re.compile(r"(^_)|(__)")
#: Methods that change a list, dict, set or deque in place: Jinja's immutable sandbox (the one
#: transformers renders with) refuses them. They reach no Python internals, so a template that
#: uses them is reported apart, at a lower severity.
MUTATING_METHODS = frozenset(
    {
        "add",
        "append",
        "appendleft",
        "clear",
        "difference_update",
        "discard",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popitem",
        "popleft",
        "remove",
        "reverse",
        "rotate",
        "setdefault",
        "sort",
        "symmetric_difference_update",
        "update",
    }
)


def _dangerous_name(name: str) -> bool:
    return bool(_DUNDERISH.search(name)) or name in _FRAME_ATTRIBUTES


class _GenerationTag(jinja2.ext.Extension):
    """Parses `{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag)."""

    tags = {"generation"}  # noqa: RUF012  (the type jinja2 declares)

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


# Parsing only: the environment never compiles or renders a template.
_ENVIRONMENT = jinja2.Environment(
    extensions=[jinja2.ext.loopcontrols, jinja2.ext.do, _GenerationTag],
    autoescape=False,  # noqa: S701  (nothing is rendered, so nothing is escaped)
)


@dataclass(frozen=True)
class TemplateIssue:
    """One way a template reaches outside what a chat template needs."""

    message: str
    evidence: str
    line: int | None = None
    #: True for a path to Python internals; False for an in-place change of a list or dict
    #: (refused by the immutable sandbox, harmless outside it).
    escape: bool = True


class TemplateParseError(Exception):
    """The template does not parse as Jinja, or is too large to analyse."""


def analyse_template(source: str) -> list[TemplateIssue]:
    """Parse `source` as Jinja (never rendering it) and return its sandbox escapes.

    Raises:
        TemplateParseError: the template is too large or is not valid Jinja.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateParseError(
            f"template of {len(source)} characters exceeds the {MAX_TEMPLATE_CHARS} limit"
        )
    try:
        tree = _ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateParseError(f"not valid Jinja: {exc.message} (line {exc.lineno})") from None
    except RecursionError:
        raise TemplateParseError("nested deeper than the parser allows") from None
    try:
        return list(_Checker(tree).issues())
    except RecursionError:
        raise TemplateParseError("nested deeper than the analysis allows") from None


class _Checker:
    """Walks a parsed template once, collecting definitions, then checks every access."""

    def __init__(self, tree: nodes.Template) -> None:
        self._tree = tree
        self._definitions: dict[str, list[nodes.Node | None]] = {}
        self._macros: set[str] = set()
        self._collect_definitions()

    def _define(self, target: nodes.Node, value: nodes.Node | None) -> None:
        if isinstance(target, nodes.Name):
            self._definitions.setdefault(target.name, []).append(value)
        elif isinstance(target, nodes.NSRef):
            self._definitions.setdefault(f"{target.name}.{target.attr}", []).append(value)
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                self._define(item, value)

    def _collect_definitions(self) -> None:
        for node in self._tree.find_all(nodes.Node):
            if isinstance(node, nodes.Assign):
                self._define(node.target, node.node)
            elif isinstance(node, nodes.AssignBlock):
                # A block's output is arbitrary text: whatever it holds is a built string.
                self._define(node.target, None)
            elif isinstance(node, nodes.For):
                self._define(node.target, node.iter)
            elif isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    self._define(target, value)
            elif isinstance(node, nodes.CallBlock):
                for arg in node.args:
                    self._define(arg, None)
        # A macro's parameters hold whatever its callers pass (or its defaults).
        macros = {node.name: node for node in self._tree.find_all(nodes.Macro)}
        self._macros = set(macros)
        for macro in macros.values():
            for arg in macro.args:
                self._definitions.setdefault(arg.name, []).extend(macro.defaults)
        for call in self._tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in macros:
                passed = [*call.args, *(kw.value for kw in call.kwargs)]
                if call.dyn_args is not None or call.dyn_kwargs is not None:
                    passed.append(nodes.TemplateData(""))
                for arg in macros[call.node.name].args:
                    self._definitions.setdefault(arg.name, []).extend(passed)

    def issues(self) -> Iterator[TemplateIssue]:
        """Every escape route the template uses."""
        for node in self._tree.find_all(nodes.Node):
            yield from self._check(node)

    def _check(self, node: nodes.Node) -> Iterator[TemplateIssue]:
        line = getattr(node, "lineno", None)
        if isinstance(node, nodes.Getattr):
            if _dangerous_name(node.attr):
                yield TemplateIssue(f"reads the attribute {node.attr!r}", node.attr, line)
            elif node.attr in MUTATING_METHODS:
                yield _mutation(node.attr, line)
            elif node.attr in _FORMAT_METHODS and not _safe_format_receiver(node.node):
                yield TemplateIssue(
                    "calls str.format, which reads attributes named in its format string",
                    node.attr,
                    line,
                )
        elif isinstance(node, nodes.NSRef) and _dangerous_name(node.attr):
            yield TemplateIssue(f"assigns the attribute {node.attr!r}", node.attr, line)
        elif isinstance(node, nodes.Keyword) and _internal_name(node.key):
            # `dict(__class__=1)|first` is the string '__class__', spelled as a keyword.
            yield TemplateIssue(
                f"passes the keyword {node.key!r}, the name of an internal attribute",
                node.key,
                line,
            )
        elif (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "dict"
        ):
            # `dict(append=1)|first` is the string 'append': a key that falls back to the
            # list's method. Only dict() turns a keyword's name into a value.
            for keyword in node.kwargs:
                if keyword.key in MUTATING_METHODS:
                    yield _mutation(keyword.key, line)
        elif isinstance(node, nodes.Getitem):
            yield from self._check_key(node.arg, "item", line)
        elif isinstance(node, nodes.Filter | nodes.Test):
            yield from self._check_filter(node, line)
        elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            yield TemplateIssue(
                f"loads another template ({type(node).__name__.lower()}), which reads files "
                "through the runtime's loader",
                type(node).__name__.lower(),
                line,
            )
        elif isinstance(node, nodes.Const) and _internal_name(node.value):
            yield TemplateIssue(
                f"holds the string {node.value!r}, the name of an internal attribute",
                node.value,
                line,
            )

    def _check_filter(
        self, node: nodes.Filter | nodes.Test, line: int | None
    ) -> Iterator[TemplateIssue]:
        args = list(node.args)
        if isinstance(node, nodes.Filter) and node.name == "map" and args:
            # map('attr', name) applies the attr filter to every item.
            first = args[0]
            if isinstance(first, nodes.Const) and first.value == "attr":
                for arg in args[1:2]:
                    yield from self._check_key(arg, "attribute (attr filter)", line, strict=True)
            elif not isinstance(first, nodes.Const):
                yield from self._check_key(first, "filter", line)
        if isinstance(node, nodes.Filter) and node.name == "attr":
            for arg in args[:1]:
                yield from self._check_key(arg, "attribute (attr filter)", line, strict=True)
        position = _POSITIONAL_ATTRIBUTE.get(node.name)
        if isinstance(node, nodes.Filter) and position is not None:
            for arg in args[position : position + 1]:
                yield from self._check_key(arg, "attribute argument", line)
        if node.name in _ATTRIBUTE_FILTERS:
            for keyword in node.kwargs:
                if keyword.key == "attribute":
                    yield from self._check_key(keyword.value, "attribute= argument", line)
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            yield TemplateIssue(
                f"passes unpacked arguments to the {node.name!r} filter or test",
                node.name,
                line,
            )

    def _check_key(
        self, key: nodes.Node, what: str, line: int | None, *, strict: bool = False
    ) -> Iterator[TemplateIssue]:
        if isinstance(key, nodes.Slice):
            return
        values = self._constants(key, frozenset())
        if values is not None:
            # Every value the key can take is a constant the template names: check each.
            for value in sorted(values):
                parts = value.split(".")
                if any(_dangerous_name(part) for part in parts):
                    yield TemplateIssue(f"looks up the {what} {value!r}", value, line)
                elif parts[-1] in MUTATING_METHODS:
                    # A key a list or string lacks falls back to the attribute of that name.
                    yield _mutation(value, line)
            return
        if strict or self._built(key, frozenset()):
            yield TemplateIssue(
                f"looks up an {what} whose name is built at render time, so it may be a "
                "private attribute",
                _describe(key),
                line,
            )

    def _constants(self, node: nodes.Node, seen: frozenset[str]) -> set[str] | None:
        """The strings `node` can evaluate to, when each is a constant the template names.

        None when the value is computed (or comes from the runtime): the caller then asks
        whether it may have been built from the template's own text.
        """
        if isinstance(node, nodes.Const):
            return {node.value} if isinstance(node.value, str) else set()
        branches: list[nodes.Node | None] | None = None
        if isinstance(node, nodes.CondExpr):
            branches = [node.expr1, node.expr2]
        elif isinstance(node, nodes.Or | nodes.And):
            branches = [node.left, node.right]
        elif isinstance(node, nodes.Name) and not self._text_name(node.name):
            branches = self._bound(node.name, seen)
            seen = seen | {node.name}
        elif isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            branches = self._bound(f"{node.node.name}.{node.attr}", seen)
            seen = seen | {f"{node.node.name}.{node.attr}"}
        if branches is None:
            return None
        values: set[str] = set()
        for branch in branches:
            if branch is None:
                if isinstance(node, nodes.CondExpr):
                    continue  # `a if b` without else: undefined, not a string
                return None
            found = self._constants(branch, seen)
            if found is None:
                return None
            values |= found
        return values

    def _bound(self, name: str, seen: frozenset[str]) -> list[nodes.Node | None] | None:
        """The values a template variable is assigned, if it is assigned (and not recursively)."""
        if name in seen or name not in self._definitions:
            return None
        return self._definitions[name]

    def _text_name(self, name: str) -> bool:
        return name in _TEMPLATE_TEXT_NAMES or name in self._macros

    def _built(self, node: nodes.Node, seen: frozenset[str]) -> bool:
        """Whether `node` may evaluate to a string the template or the model built."""
        values = self._constants(node, seen)
        if values is not None:
            # Slicing, `first`, `list` and other pass-through operations keep substrings.
            return any(_material(value) for value in values)
        if isinstance(node, nodes.Concat | nodes.TemplateData | nodes.Output):
            return True
        if isinstance(node, nodes.Name):
            return self._text_name(node.name) or self._name_built(node.name, seen)
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and f"{node.node.name}.{node.attr}" in self._definitions
        ):
            return self._name_built(f"{node.node.name}.{node.attr}", seen)
        if isinstance(node, nodes.Filter) and node.name in _STRING_BUILDERS:
            return True
        if isinstance(node, nodes.Call):
            callee = node.node
            if isinstance(callee, nodes.Getattr) and callee.attr in _STRING_BUILDERS:
                return True
        if isinstance(node, nodes.Add | nodes.Mul | nodes.Mod):
            # Joining strings builds a new name from pieces that need not look like one.
            for operand in (node.left, node.right):
                values = self._constants(operand, seen)
                if values or (values is None and self._built(operand, seen)):
                    return True
            return False
        return any(self._built(child, seen) for child in node.iter_child_nodes())

    def _name_built(self, name: str, seen: frozenset[str]) -> bool:
        if name in seen:
            return False
        if name not in self._definitions:
            # A variable the runtime passes in: special tokens are strings the model supplies.
            return name.endswith(("token", "tokens"))
        seen = seen | {name}
        return any(value is None or self._built(value, seen) for value in self._definitions[name])


def _material(value: str) -> bool:
    """Whether a substring of `value` can be an internal or mutating attribute name."""
    lowered = value.lower()
    return (
        "_" in value
        or any(name in lowered for name in _FRAME_ATTRIBUTES)
        or any(name in lowered for name in MUTATING_METHODS)
    )


def _mutation(name: str, line: int | None) -> TemplateIssue:
    return TemplateIssue(
        f"uses {name!r}, a method that changes a list or dict in place (the immutable "
        "sandbox refuses it)",
        name,
        line,
        escape=False,
    )


def _internal_name(value: object) -> bool:
    """A string that is exactly a dunder name or a frame attribute."""
    return isinstance(value, str) and (
        value in _FRAME_ATTRIBUTES or re.fullmatch(r"__\w+__", value) is not None
    )


def _safe_format_receiver(node: nodes.Node) -> bool:
    """A constant format string whose fields read no attribute and no item."""
    if not isinstance(node, nodes.Const) or not isinstance(node.value, str):
        return False
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(node.value)]
    except ValueError:
        return False
    return all(field is None or not re.search(r"[.\[]", field) for field in fields)


def _describe(node: nodes.Node) -> str:
    text = repr(node)
    return text if len(text) <= 200 else text[:197] + "..."
