"""The import structure holds: no cycle in `verifier/`, and a command line that starts light.

Cycles are counted over every `import` in a module, wherever it is written: at module level,
inside functions (a function-level import that closes a loop is still a cycle: it is how
`pipeline` and `fetch` hid theirs) and under `if TYPE_CHECKING:` (a type-only loop is a design
loop too). Only `verifier.*` modules are nodes; `from package import name` is an edge to the
submodule `package.name` when that is a module, else to the package. The implicit import of a
parent package when a submodule loads is not an edge (every package would be a cycle).
"""

from __future__ import annotations

import ast
import json
import random
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "verifier"

#: Third-party packages that `verifier --help` (importing `verifier.cli`) must not load: each is
#: loaded by the one command path that needs it.
HEAVY = (
    "alembic",
    "celpy",
    "cryptography",
    "fpdf",
    "huggingface_hub",
    "jinja2",
    "numpy",
    "platformdirs",
    "procrastinate",
    "psycopg",
    "pydantic",
    "requests",
    "rich",
    "safetensors",
    "sigstore",
    "sqlalchemy",
    "torch",
    "yaml",
)
#: Our own subpackages that pull those in; none loads for `--help`.
HEAVY_OURS = (
    "verifier.evidence",
    "verifier.pipeline",
    "verifier.policy",
    "verifier.scanners",
    "verifier.signatures",
    "verifier.sources",
    "verifier.store",
)


def _module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every `verifier.*` module that module `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    yield f"{base}.{alias.name}"
                elif base in modules:
                    yield base


def import_graph() -> dict[str, set[str]]:
    """Module name -> the `verifier.*` modules it imports."""
    modules = _module_names()
    return {name: set(_imported(name, path, modules)) - {name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # `cli` imports the store only inside functions, and the store package re-exports Store.
    assert "verifier.store" in graph["verifier.cli"]
    assert "verifier.store.database" in graph["verifier.store"]


#: The one cycle on main when this test was written: `fetch._scan_landed` imports `pipeline`
#: back. Issue 14 part 2 (one per-file scan path through the Source seam) removes it; delete
#: this entry then. No other cycle may appear.
KNOWN_CYCLES: list[list[str]] = []


def test_no_import_cycle_in_verifier() -> None:
    found = [cycle for cycle in cycles(import_graph()) if cycle not in KNOWN_CYCLES]
    assert found == [], f"import cycles in verifier/: {found}"


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def _heavy(loaded: set[str]) -> list[str]:
    return sorted(
        name
        for name in loaded
        if name.split(".")[0] in HEAVY
        or any(name == ours or name.startswith(f"{ours}.") for ours in HEAVY_OURS)
    )


def test_importing_the_command_line_loads_nothing_heavy() -> None:
    assert _heavy(_loaded_after("import verifier.cli")) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["scan", "--help"],
        ["report", "--help"],
        ["pull", "--help"],
        ["check", "--help"],
        ["worker", "--help"],
        [],
    ],
)
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from verifier.cli import main
        sys.argv = ["verifier", *{args!r}]
        with contextlib.redirect_stdout(io.StringIO()):
            main()
        """
    )
    assert _heavy(_loaded_after(code)) == []


def test_the_check_would_see_a_heavy_import() -> None:
    # The checks above can fail: loading the store pulls SQLAlchemy in.
    assert "sqlalchemy" in _heavy(_loaded_after("import verifier.cli, verifier.store.database"))


#: What a local scan of one pickle recorded in a database already at head never needs: Alembic
#: (the schema is recognised by one query), the Hub client, signature verification without a
#: signature, the evidence renderers, rich when the output is JSON without a progress bar, the
#: scanners of other formats (imported for the first file of their format), the weight
#: fingerprints of verified lineage (a pickle has no weights it compares), SQLAlchemy (a scan
#: is recorded in SQLite with `sqlite3`, `verifier.store.sqlite_recorder`), packageurl (a
#: local file has no package URL), the lockfile (no `--lock`) and the signature bundle and
#: statement parsers (no signature).
NOT_ON_THE_SCAN_PATH = (
    "alembic",
    "cryptography",
    "huggingface_hub",
    "jinja2",
    "numpy",
    "packageurl",
    "rich",
    "sigstore",
    "sqlalchemy",
    "torch",
    "verifier.evidence",
    "verifier.lineage.attribution",
    "verifier.lockfile",
    "verifier.lineage.fingerprint",
    "verifier.scanners.archive",
    "verifier.scanners.basic",
    "verifier.scanners.gguf",
    "verifier.scanners.keras",
    "verifier.scanners.remote_code",
    "verifier.scanners.safetensors",
    "verifier.scanners.sevenz",
    "verifier.scanners.tar",
    "verifier.signatures.bundle",
    "verifier.signatures.model_signing",
    "verifier.signatures.statement",
    "verifier.store.database",
    "verifier.store.scan_tables",
    "verifier.store.tables",
)


def test_a_local_scan_at_head_loads_only_its_path(tmp_path: Path) -> None:
    import pickle

    from verifier.store import Store

    url = f"sqlite:///{tmp_path / 'verifier.db'}"
    Store.open(url).close()
    sample = tmp_path / "ONE.pkl"
    sample.write_bytes(pickle.dumps({"step": 1, "loss": [0.5]}, protocol=4))
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from verifier.cli import main
        sys.argv = ["verifier", "scan", {str(sample)!r}, "-q", "--format", "json",
                    "--database-url", {url!r}]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main() == 0
        """
    )
    loaded = _loaded_after(code)
    # It did scan and record.
    assert {"verifier.scanners.pickle", "verifier.store.sqlite_recorder"} <= loaded
    unexpected = sorted(
        name
        for name in loaded
        if any(name == heavy or name.startswith(f"{heavy}.") for heavy in NOT_ON_THE_SCAN_PATH)
    )
    assert unexpected == []


#: What the same scan does not load once its policy is in the compiled-policy cache
#: (`verifier.policy.loading`): the policy schema and its validators, and the CEL evaluator
#: (the default policy has no `when:`).
NOT_ON_A_WARM_SCAN_PATH = (
    "celpy",
    "pydantic",
    "pydantic_core",
    "yaml",
    "verifier.bounded_yaml",
    "verifier.policy.cel",
    "verifier.policy.publishers",
    "verifier.policy.schema",
    "verifier.policy.yamlfile",
)


def test_a_scan_with_its_policy_cached_loads_no_schema_validator(tmp_path: Path) -> None:
    import pickle

    from verifier.store import Store

    url = f"sqlite:///{tmp_path / 'verifier.db'}"
    Store.open(url).close()
    sample = tmp_path / "ONE.pkl"
    sample.write_bytes(pickle.dumps({"step": 1, "loss": [0.5]}, protocol=4))
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from verifier.cli import main
        sys.argv = ["verifier", "scan", {str(sample)!r}, "-q", "--format", "json",
                    "--database-url", {url!r}]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main() == 0
        """
    )

    def schema_modules(loaded: set[str]) -> list[str]:
        return sorted(
            name
            for name in loaded
            if any(name == h or name.startswith(f"{h}.") for h in NOT_ON_A_WARM_SCAN_PATH)
        )

    # The first scan validates the default policy (and so can fail this check), the second
    # reads it compiled.
    first = _loaded_after(code)
    assert {"pydantic", "yaml", "verifier.policy.schema"} <= set(schema_modules(first))
    second = _loaded_after(code)
    assert "verifier.policy.engine" in second  # it did decide
    assert schema_modules(second) == []


def test_a_local_scan_of_weights_loads_no_template_parser_nor_sqlalchemy(tmp_path: Path) -> None:
    # Verified lineage reads the weights (and so loads the weight readers, which know GGUF's
    # tensor table), but Jinja's parser is for chat templates only, and lineage asks a SQLite
    # store at head through `sqlite3` (the recorded files, the lineage key, the fingerprints
    # it compares with).
    from tests.samples import safetensors_bytes
    from verifier.store import Store

    url = f"sqlite:///{tmp_path / 'verifier.db'}"
    with Store.open(url) as store:
        store.lineage_key()  # made by the first scan of weights (through the Store); read after
    # Weights that fingerprint (an embedding and a matrix of its width), scanned twice: the
    # second scan compares with the first one's fingerprint, which it reads from the store.
    rng = random.Random(0)
    values = struct.pack("<1536f", *(rng.gauss(0.0, 1.0) for _ in range(1536)))
    header = {
        "model.embed_tokens.weight": {"dtype": "F32", "shape": [128, 8], "data_offsets": [0, 4096]},
        "model.layers.0.mlp.up_proj.weight": {
            "dtype": "F32",
            "shape": [256, 8],
            "data_offsets": [4096, 12288],
        },
    }
    for name in ("model", "again"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(safetensors_bytes(header, values * 2))
    code = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from verifier.cli import main
        for name in ("model", "again"):
            sys.argv = ["verifier", "scan", {str(tmp_path)!r} + "/" + name, "-q", "--format",
                        "json", "--database-url", {url!r}]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                main()
            lineage = json.loads(out.getvalue())["verified_lineage"]
            assert lineage["status"] == "verified", lineage
        assert lineage["compared"] == 1, lineage  # the first scan's fingerprint was read
        """
    )
    loaded = _loaded_after(code)
    assert "verifier.lineage.fingerprint" in loaded  # it did look at the weights
    unexpected = sorted(
        name
        for name in loaded
        if any(
            name == heavy or name.startswith(f"{heavy}.")
            for heavy in ("jinja2", "sqlalchemy", "verifier.store.database")
        )
    )
    assert unexpected == []


def _hub_imports() -> Iterator[tuple[str, str]]:
    """(module, imported name) for every import of `huggingface_hub` anywhere in `verifier/`."""
    for name, path in _module_names().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "huggingface_hub":
                        yield name, alias.name
            elif (
                isinstance(node, ast.ImportFrom)
                and not node.level
                and (node.module or "").split(".")[0] == "huggingface_hub"
            ):
                yield from ((name, f"{node.module}.{a.name}") for a in node.names)


def test_only_the_hub_package_imports_huggingface_hub_and_only_its_public_api() -> None:
    found = list(_hub_imports())
    assert found, "the check must see the Hub client's imports"
    outside = [m for m, _ in found if not m.startswith("verifier.sources.huggingface.")]
    assert outside == [], (
        f"huggingface_hub imported outside verifier/sources/huggingface/: {outside}"
    )
    private = [what for _, what in found if any(p.startswith("_") for p in what.split("."))]
    assert private == [], f"private huggingface_hub API: {private}"
    # Names the Hub client relies on, public where they are imported from (checked at run time:
    # huggingface_hub.utils computes its `__all__`).
    import huggingface_hub
    import huggingface_hub.utils

    for what in sorted({w for _, w in found}):
        module, _, attr = what.rpartition(".")
        if module == "huggingface_hub.utils":
            assert attr in huggingface_hub.utils.__all__, what
        elif module == "huggingface_hub":
            assert attr in dir(huggingface_hub) or attr in {"errors", "constants"}, what
