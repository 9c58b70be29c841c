"""Code beside the weights: Python files, `auto_map` hints, and chat templates in configs.

transformers imports a repository's `.py` files when `trust_remote_code=True` and a config's
`auto_map` names them; those files run with the user's rights, so each is a finding of its own
(medium by default: the policy decides). Nothing here imports or runs anything: Python files
are parsed with `ast` only, to name the calls that start processes or evaluate code.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

import yaml

from verifier import bounded_yaml
from verifier.model import Finding, Severity
from verifier.scanners.interface import ScanContext, ScanStream
from verifier.scanners.python_ast import PythonFacts, analyse

#: Largest Python file parsed for dangerous calls; a larger one is reported unparsed.
MAX_SOURCE = 4 << 20
#: Most tokens (words, numbers and symbols, counted at C speed before parsing, strings and
#: comments included) in a Python file parsed: `ast.parse` builds about two nodes per token and
#: holds nearly 1 KB per node, so a 4 MB file of `[],` took 41 s and 2.3 GB to parse. Real
#: modeling files hold tens of thousands (huggingface_hub's 680 KB hf_api.py: 138,000).
MAX_SOURCE_TOKENS = 200_000
_TOKEN = re.compile(r"\w+|[^\w\s]")
#: Largest standalone chat template file analysed.
MAX_TEMPLATE_FILE = 4 << 20


def python_file_finding(path: str) -> Finding | None:
    """REMOTE-CODE-PYTHON-FILE for a `.py` file (named by path: that is how it is imported)."""
    if os.path.splitext(path)[1].lower() != ".py":
        return None
    return Finding(
        "REMOTE-CODE-PYTHON-FILE",
        Severity.MEDIUM,
        "Python file in the model: loaders run it when asked to trust remote code "
        "(trust_remote_code=True); review it before allowing",
        file=path,
        evidence=path,
    )


_TEMPLATE_SUFFIXES = (".jinja", ".jinja2", ".j2")
_YAML_SUFFIXES = (".yaml", ".yml")
#: Largest YAML file parsed for templates.
MAX_YAML = 16 << 20


def carries_code(path: str) -> bool:
    """Whether a text file at `path` is or holds code a loader runs (Python, Jinja, YAML)."""
    suffix = os.path.splitext(path)[1].lower()
    return suffix == ".py" or suffix in _TEMPLATE_SUFFIXES or suffix in _YAML_SUFFIXES


def scan_text(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    """Findings for text files that carry code: Python sources, Jinja templates, YAML configs."""
    suffix = os.path.splitext(ctx.path)[1].lower()
    if suffix == ".py":
        yield from _python_calls(stream, ctx)
    elif suffix in _TEMPLATE_SUFFIXES:
        yield from _template_file(stream, ctx)
    elif suffix in _YAML_SUFFIXES:
        yield from _yaml_templates(stream, ctx)


def _yaml_templates(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    source = _read_text(stream, MAX_YAML)
    if source is None:
        yield _template_invalid(ctx, "YAML config", "it is past the analysis limit")
        return
    try:
        documents = bounded_yaml.load_all(source, bounded_yaml.MODEL_FILE)
    except bounded_yaml.YamlLimitError as exc:
        yield _template_invalid(ctx, "YAML config", f"it is past the analysis limit ({exc})")
        return
    except (yaml.YAMLError, ValueError):
        return  # not YAML a loader would read either; its templates are not rendered
    for document in documents:
        yield from embedded_templates(document, ctx)


def _read_text(stream: ScanStream, limit: int) -> str | None:
    if stream.size > limit:
        return None
    data = stream.read(limit + 1)
    if len(data) > limit:
        return None
    return data.decode("utf-8-sig", errors="replace")


def _python_calls(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    source = _read_text(stream, MAX_SOURCE)
    if source is None:
        yield ctx.finding(
            "REMOTE-CODE-UNPARSED",
            Severity.HIGH,
            f"Python file larger than {MAX_SOURCE} bytes was not analysed",
        )
        return
    tokens = sum(1 for _ in itertools.islice(_TOKEN.finditer(source), MAX_SOURCE_TOKENS + 1))
    if tokens > MAX_SOURCE_TOKENS:
        yield ctx.finding(
            "REMOTE-CODE-UNPARSED",
            Severity.HIGH,
            f"Python file of more than {MAX_SOURCE_TOKENS} tokens was not analysed",
        )
        return
    try:
        tree = ast.parse(source, filename=ctx.path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        yield ctx.finding(
            "REMOTE-CODE-UNPARSED",
            Severity.HIGH,
            f"Python file does not parse, so it was not analysed: {type(exc).__name__}",
        )
        return
    facts = analyse(tree)
    seen: set[str] = set()
    for use in sorted(facts.uses, key=lambda u: (u.line, u.name)):
        if use.name in seen:
            continue
        seen.add(use.name)
        if use.dynamic:
            yield ctx.finding(
                "REMOTE-CODE-DYNAMIC-DISPATCH",
                Severity.HIGH,
                f"Python file reaches code by a name chosen at run time: {use.name} (line "
                f"{use.line}); what it calls cannot be checked, so it is treated as dangerous",
                evidence=use.name,
            )
        else:
            yield ctx.finding(
                "REMOTE-CODE-DANGEROUS-CALL",
                Severity.HIGH,
                f"Python file uses {use.name} (line {use.line}): it runs commands, evaluates "
                "or loads code when the model is loaded with trust_remote_code",
                evidence=use.name,
            )
    yield _summary(facts, ctx)


def _summary(facts: PythonFacts, ctx: ScanContext) -> Finding:
    """REMOTE-CODE-IMPORTS: what the file imports and reaches, for the reviewer."""
    imports = sorted(facts.imports)
    parts = [f"imports {', '.join(imports) if imports else 'nothing'}"]
    if facts.network:
        parts.append(f"calls network clients {', '.join(sorted(facts.network))}")
    if facts.computed_attributes:
        parts.append(f"{facts.computed_attributes} getattr/setattr with computed names on objects")
    evidence = ", ".join(imports)
    return ctx.finding(
        "REMOTE-CODE-IMPORTS",
        Severity.INFO,
        "Python file " + "; ".join(parts),
        evidence=evidence if len(evidence) <= 500 else evidence[:497] + "...",
    )


def _template_file(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    source = _read_text(stream, MAX_TEMPLATE_FILE)
    if source is None:
        yield _template_invalid(ctx, "chat template file", "it is past the analysis limit")
        return
    yield from _template(source, ctx, "chat template file")


def config_findings(document: Any, ctx: ScanContext) -> Iterator[Finding]:
    """Findings for a parsed JSON config: `auto_map`, remote-code hints, chat templates."""
    if not isinstance(document, dict):
        return
    yield from _auto_map(document, ctx)
    if document.get("trust_remote_code") is True:
        yield ctx.finding(
            "REMOTE-CODE-TRUST-HINT",
            Severity.MEDIUM,
            "config sets trust_remote_code: true; loaders that honour it run the "
            "repository's Python files",
            evidence="trust_remote_code",
        )
    yield from embedded_templates(document, ctx)


def embedded_templates(document: Any, ctx: ScanContext) -> Iterator[Finding]:
    """Analyse every Jinja template a parsed JSON or YAML document holds.

    `chat_template` (a string, or a list of named templates as tokenizer_config.json writes
    them) and any string under a key naming a template (`template`, `prompt_template`, ...) are
    templates: one that does not parse is CHAT-TEMPLATE-INVALID. Any other string with Jinja
    markers (`{{`, `{%`) is analysed too, but a parse failure there is not reported: no loader is
    known to render it.
    """
    for path, key, value in _strings(document):
        if not isinstance(value, str):
            continue
        named = "template" in key.lower()
        if not named and not _JINJA_MARKERS.search(value):
            continue
        where = "chat_template" if path == "chat_template" else f"template at {path}"
        if named:
            yield from _template(value, ctx, where)
            continue
        # Jinja's parser is loaded only for a document that holds something like a template.
        from verifier.scanners.chat_template import TemplateParseError, analyse_template

        try:
            analyse_template(value)
        except TemplateParseError:
            continue
        yield from _template(value, ctx, where)


_JINJA_MARKERS = re.compile(r"\{\{|\{%")


def _strings(document: Any) -> Iterator[tuple[str, str, object]]:
    """(dotted path, nearest key, value) for every string; a list's template entries are named
    by their `name`, as tokenizer_config.json lists them."""
    stack: list[tuple[str, str, object]] = [("", "", document)]
    visited: set[int] = set()  # a YAML anchor used many times is one object, walked once
    while stack:
        path, key, node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in visited:
                continue
            visited.add(id(node))
        if isinstance(node, dict):
            named = node.get("name") if isinstance(node.get("template"), str) else None
            for child_key, value in node.items():
                child = f"{path}.{child_key}" if path else str(child_key)
                if named is not None and child_key == "template":
                    child = f"{path}[{named!r}]"
                stack.append((child, str(child_key), value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", key, value) for i, value in enumerate(node))
        elif isinstance(node, str):
            yield path, key, node


def _auto_map(document: dict[str, Any], ctx: ScanContext) -> Iterator[Finding]:
    references: list[tuple[str, str]] = []
    auto_map = document.get("auto_map")
    if isinstance(auto_map, dict):
        for auto_class, value in auto_map.items():
            for reference in value if isinstance(value, list) else [value]:
                if isinstance(reference, str):
                    references.append((str(auto_class), reference))
    pipelines = document.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, spec in pipelines.items():
            if isinstance(spec, dict):
                for key in ("impl", "pt", "tf"):
                    value = spec.get(key)
                    for reference in value if isinstance(value, list) else [value]:
                        if isinstance(reference, str) and "." in reference:
                            references.append((f"pipeline {task}", reference))
    local = [(c, r) for c, r in references if "--" not in r]
    external = [(c, r) for c, r in references if "--" in r]
    if local:
        files = sorted({_module_file(r) for _, r in local})
        yield ctx.finding(
            "REMOTE-CODE-AUTO-MAP",
            Severity.MEDIUM,
            "config maps classes to the repository's own Python code ("
            + ", ".join(f"{c} -> {r}" for c, r in local)
            + "); loaders run it with trust_remote_code",
            evidence=", ".join(files),
        )
    for auto_class, reference in external:
        repository = reference.split("--", 1)[0]
        yield ctx.finding(
            "REMOTE-CODE-EXTERNAL-REPO",
            Severity.HIGH,
            f"config maps {auto_class} to code in another repository ({reference}): that code "
            "is fetched at load time and was not part of what was verified",
            evidence=repository,
        )


def _module_file(reference: str) -> str:
    """`modeling_x.XModel` -> `modeling_x.py`."""
    module = reference.rsplit(".", 1)[0] if "." in reference else reference
    return module.replace(".", "/") + ".py"


def _template(source: str, ctx: ScanContext, where: str) -> Iterator[Finding]:
    from verifier.scanners.chat_template import TemplateParseError, analyse_template

    try:
        issues = analyse_template(source)
    except TemplateParseError as exc:
        yield _template_invalid(ctx, where, str(exc))
        return
    seen: set[str] = set()
    for issue in issues:
        if issue.message in seen:
            continue
        seen.add(issue.message)
        line = f" (template line {issue.line})" if issue.line else ""
        if not issue.escape:
            yield mutation_finding(ctx, f"{where} {issue.message}{line}", issue.evidence)
            continue
        yield ctx.finding(
            "CHAT-TEMPLATE-INJECTION",
            Severity.CRITICAL,
            f"{where} {issue.message}{line}: rendering it outside Jinja's sandbox runs code",
            evidence=issue.evidence,
        )


def mutation_finding(
    ctx: ScanContext, message: str, evidence: str, *, offset: int | None = None
) -> Finding:
    """CHAT-TEMPLATE-MUTATION: a template changes a list or dict in place."""
    return ctx.finding(
        "CHAT-TEMPLATE-MUTATION",
        Severity.MEDIUM,
        f"{message}: transformers' sandbox refuses to render it; outside a sandbox it can "
        "change the conversation it is given",
        offset=offset,
        evidence=evidence,
    )


def _template_invalid(ctx: ScanContext, where: str, why: str) -> Finding:
    return ctx.finding(
        "CHAT-TEMPLATE-INVALID",
        Severity.HIGH,
        f"{where} could not be analysed: {why}",
    )
