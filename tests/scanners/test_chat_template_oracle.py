"""Jinja's own sandbox is the oracle: whatever it refuses when it renders a template, the
static analysis flags (without rendering).

Templates are composed from parts: a receiver (a value or a global that carries `__init__` and
`__globals__`), a way to name an attribute (`.x`, `[k]`, `|attr`, `map`, `selectattr`, `sum`,
`sort`, `str.format`, ...), a way to build the name (constants, `~`, `+`, `*`, `%`, `join`,
`format`, `replace`, `dict(k=1)|first`, loop and `set` variables, `set` blocks, macros,
`caller()`, `self.block()`, `varargs`, namespaces, special tokens) and a place to hide it
(loops, `with`, `if`, macros, call blocks, filter blocks, `set` blocks). Each is rendered in
an `ImmutableSandboxedEnvironment` that records every refusal; the analysis must flag every
template the sandbox refused (as an escape when the refusal was an internal attribute, at least
as a mutation when it was an in-place change of a list or dict).
"""

from __future__ import annotations

import itertools
from typing import Any

import jinja2
import jinja2.ext
import jinja2.sandbox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus.chat_templates import BENIGN
from verifier.scanners.chat_template import MUTATING_METHODS, analyse_template


class RecordingSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox, remembering what it refused instead of only refusing it."""

    def __init__(self) -> None:
        super().__init__(extensions=[jinja2.ext.loopcontrols, jinja2.ext.do])
        self.internal: list[str] = []
        self.mutations: list[str] = []
        self.globals["raise_exception"] = _raise

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not jinja2.sandbox.SandboxedEnvironment.is_safe_attribute(self, obj, attr, value):
            self.internal.append(attr)
            return False
        if jinja2.sandbox.modifies_known_mutable(obj, attr):
            self.mutations.append(attr)
            return False
        return True

    def is_safe_callable(self, obj: Any) -> bool:
        safe = super().is_safe_callable(obj)
        if not safe:
            self.internal.append(repr(obj))
        return safe


def _raise(message: str) -> None:
    raise ValueError(message)


CONTEXT: dict[str, Any] = {
    "messages": [{"role": "user", "content": "hi"}],
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "bos_token": "__class__",
    "eos_token": "</s>",
    "add_generation_prompt": True,
}


def _sandbox_refuses(template: str) -> tuple[list[str], list[str]]:
    env = RecordingSandbox()
    try:
        env.from_string(template).render(**CONTEXT)
    except jinja2.TemplateSyntaxError:
        raise
    except Exception:
        pass
    return env.internal, env.mutations


def _check(template: str) -> bool:
    """Assert the oracle's rule for one template; return whether the sandbox refused it."""
    internal, mutations = _sandbox_refuses(template)
    issues = analyse_template(template)
    if internal:
        assert any(i.escape for i in issues), (template, internal, issues)
    if mutations:
        assert issues, (template, mutations, issues)
    return bool(internal or mutations)


# --- parts -------------------------------------------------------------------------------

RECEIVERS = [
    "()",
    "''",
    "messages",
    "messages[0]",
    "cycler",
    "joiner",
    "namespace",
    "lipsum",
    "range",
    "dict",
    "self",
    "loop_or_none",
]

NAMES = ["__class__", "__init__", "__globals__", "_private", "mro", "gi_frame", "append"]


def _pieces(name: str) -> tuple[str, str]:
    middle = len(name) // 2
    return name[:middle], name[middle:]


#: How a name is formed: each returns (statements before, an expression for the name).
def _formations(name: str) -> dict[str, tuple[str, str]]:
    a, b = _pieces(name)
    stripped = name.strip("_")
    under = len(name) - len(name.lstrip("_"))
    return {
        "const": ("", repr(name)),
        "tilde": ("", f"{a!r} ~ {b!r}"),
        "plus": ("", f"{a!r} + {b!r}"),
        "times": ("", f"'_' * {under} ~ {stripped!r} ~ '_' * {under}" if under else repr(name)),
        "percent": ("", f"'%s%s' % ({a!r}, {b!r})"),
        "join": ("", f"[{a!r}, {b!r}]|join"),
        "format-method": ("", f"'{{}}{{}}'.format({a!r}, {b!r})"),
        "format-filter": ("", f"'%s%s'|format({a!r}, {b!r})"),
        "replace": ("", f"{name.replace('_', 'X')!r}|replace('X', '_')"),
        "dict-keyword": ("", f"dict({name}=1)|first" if name.isidentifier() else repr(name)),
        "set-var": (f"{{% set k = {a!r} ~ {b!r} %}}", "k"),
        "set-block": (f"{{% set k %}}{name}{{% endset %}}", "k"),
        "for-var": (f"{{% for k in [{a!r} ~ {b!r}] %}}{{% set kk = k %}}{{% endfor %}}", "kk"),
        "namespace": (
            f"{{% set ns = namespace(k='') %}}{{% set ns.k = {a!r} ~ {b!r} %}}",
            "ns.k",
        ),
        "macro": (f"{{% macro mk() %}}{name}{{% endmacro %}}", "mk()"),
        "macro-arg": ("{% macro mk(x) %}{{ x }}{% endmacro %}", f"mk({a!r} ~ {b!r})"),
        "upper-lower": ("", f"{name.upper()!r}|lower"),
        "center": ("", f"{stripped!r}|center({len(name)})" if not under else repr(name)),
        "reverse": ("", f"{name[::-1]!r}|reverse"),
        "special-token": ("", "bos_token"),
        "split": ("", f"{('x' + name + 'x')!r}.split('x')[1]"),
        "slice": ("", f"{('xx' + name)!r}[2:]"),
    }


#: How the name is used on the receiver: each returns an expression.
def _accesses(receiver: str, key: str) -> dict[str, str]:
    return {
        "getitem": f"{receiver}[{key}]",
        "attr-filter": f"{receiver}|attr({key})",
        "map-attr": f"[{receiver}]|map('attr', {key})|list",
        "map-attribute": f"[{receiver}]|map(attribute={key})|list",
        "selectattr": f"[{receiver}]|selectattr({key})|list",
        "rejectattr": f"[{receiver}]|rejectattr({key})|list",
        "sum-attribute": f"[{receiver}]|sum(attribute={key})",
        "sort-positional": f"[{receiver}]|sort(false, false, {key})|list",
        "groupby": f"[{receiver}]|groupby({key})|list",
        "unique": f"[{receiver}]|unique(false, {key})|list",
        "format-field": f"('{{0.' ~ {key} ~ '}}').format({receiver})",
    }


def _wrap(where: str, statements: str, expression: str) -> str:
    """Put `expression` (after `statements`) somewhere a name-matching scanner might not look."""
    body = f"{statements}{{{{ {expression} }}}}"
    return {
        "plain": body,
        "for": f"{{% for m in messages %}}{body}{{% endfor %}}",
        "if": f"{{% if messages %}}{body}{{% endif %}}",
        "with": f"{{% with q = 1 %}}{body}{{% endwith %}}",
        "macro": f"{{% macro run() %}}{body}{{% endmacro %}}{{{{ run() }}}}",
        "call-block": (
            f"{{% macro wrap() %}}{{{{ caller() }}}}{{% endmacro %}}"
            f"{{% call wrap() %}}{body}{{% endcall %}}"
        ),
        "filter-block": f"{{% filter upper %}}{body}{{% endfilter %}}",
        "set-block": f"{{% set out %}}{body}{{% endset %}}{{{{ out }}}}",
    }[where]


WHERE = ["plain", "for", "if", "with", "macro", "call-block", "filter-block", "set-block"]


def _template(receiver: str, name: str, formation: str, access: str, where: str) -> str:
    statements, key = _formations(name)[formation]
    if receiver == "loop_or_none":
        statements = statements + "{% set loop_or_none = none %}"
    return _wrap(where, statements, _accesses(receiver, key)[access])


def _refused_count(cases: list[str]) -> int:
    return sum(_check(case) for case in cases)


# --- the tests ---------------------------------------------------------------------------


def test_every_formation_and_access_the_sandbox_refuses_is_flagged() -> None:
    cases = [
        _template("cycler", name, formation, access, "plain")
        for name, formation, access in itertools.product(
            NAMES, _formations("__class__"), _accesses("x", "k")
        )
    ]
    # The oracle must actually refuse many of them, or this test would prove nothing (a cycler
    # has no `gi_frame` and no `append`, so those names are not refused on it).
    assert _refused_count(cases) > len(cases) // 3


def test_every_receiver_and_hiding_place_the_sandbox_refuses_is_flagged() -> None:
    cases = [
        _template(receiver, "__class__", formation, "getitem", where)
        for receiver, formation, where in itertools.product(
            RECEIVERS, ["tilde", "set-block", "macro", "dict-keyword"], WHERE
        )
    ]
    assert _refused_count(cases) > len(cases) // 2


def test_dunder_globals_through_every_global() -> None:
    refused = 0
    for receiver in ["cycler", "joiner", "namespace", "lipsum", "range", "dict", "self"]:
        for chain in [".__init__.__globals__", "['__init__']['__globals__']", ".__globals__"]:
            refused += _check(f"{{{{ {receiver}{chain} }}}}")
    assert refused > 10


def test_call_block_body_and_self_block_as_names() -> None:
    templates = [
        "{% macro m() %}{{ ()[caller()] }}{% endmacro %}{% call m() %}__class__{% endcall %}",
        "{% block b %}__class__{% endblock %}{{ ()[self.b()] }}",
        "{% macro m() %}{{ ()[varargs[0]] }}{% endmacro %}{{ m('__cl' ~ 'ass__') }}",
        "{% macro m() %}{{ ()[kwargs.k] }}{% endmacro %}{{ m(k='__cl' ~ 'ass__') }}",
        "{% set f = joiner('__class__') %}{{ f() }}{{ ()[f()] }}",
    ]
    assert _refused_count(templates) >= 4


def test_benign_names_are_not_flagged() -> None:
    # The analysis is not "flag everything": constant, public names pass.
    for access in _accesses("x", "k"):
        if access == "format-field":
            continue
        template = _template("messages", "role", "const", access, "for")
        assert not analyse_template(template), template


@pytest.mark.parametrize("family", sorted(BENIGN))
def test_family_templates_are_clean_and_the_sandbox_agrees(family: str) -> None:
    source = BENIGN[family].replace("{% generation %}", "").replace("{% endgeneration %}", "")
    internal, mutations = _sandbox_refuses(source)
    assert not internal and not mutations
    assert analyse_template(BENIGN[family]) == []


def test_the_mutating_names_match_jinja() -> None:
    objects: list[Any] = [[], {}, set()]
    jinja = {
        name
        for obj in objects
        for name in dir(obj)
        if jinja2.sandbox.modifies_known_mutable(obj, name)
    }
    assert jinja <= MUTATING_METHODS


_parts = st.tuples(
    st.sampled_from(RECEIVERS),
    st.sampled_from([*NAMES, "role", "content", "items"]),
    st.sampled_from(sorted(_formations("__class__"))),
    st.sampled_from(sorted(_accesses("x", "k"))),
    st.sampled_from(WHERE),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(_parts, min_size=1, max_size=3))
def test_random_compositions_follow_the_oracle(
    parts: list[tuple[str, str, str, str, str]],
) -> None:
    template = "".join(_template(*p) for p in parts)
    _check(template)


@pytest.mark.parametrize(
    "template",
    [
        # Found by the random compositions: a mutating method's name spelled as a dict keyword.
        "{{ ()[dict(_private=1)|first] }}{{ messages[dict(append=1)|first] }}",
        "{{ messages[dict(pop=1)|list|first] }}",
    ],
)
def test_mutating_names_spelled_as_dict_keywords(template: str) -> None:
    assert _check(template)


def test_keywords_of_filters_are_not_names() -> None:
    # `sort(reverse=true)` passes an argument; only dict() makes a keyword's name a value.
    assert analyse_template("{{ messages|sort(reverse=true)|map(attribute='role')|join }}") == []
