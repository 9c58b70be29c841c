"""Packaging hygiene: the distribution's name, its requirements, its packages and its files."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import Counter
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT: dict[str, Any] = PYPROJECT["project"]
#: The index name `verifier` belongs to an unrelated project: installing it is the trap.
DISTRIBUTION = "model-weights-verifier"
#: Code that runs in an installed verifier (tests, benchmarks and examples do not ship).
RUNTIME_CODE = (ROOT / "verifier", ROOT / "migrations")
#: Imported by runtime code but provided by an extra, loaded lazily with a clear error.
OPTIONAL_IMPORTS = {"fpdf": "pdf", "procrastinate": "postgres", "lz4": "lz4", "py7zr": "7z"}


def _requirement_lists() -> dict[str, list[str]]:
    lists = {"dependencies": list(PROJECT["dependencies"])}
    for extra, requirements in PROJECT["optional-dependencies"].items():
        lists[f"optional-dependencies.{extra}"] = list(requirements)
    return lists


def _third_party_imports() -> dict[str, set[Path]]:
    """Top-level names of every non-stdlib, non-verifier module runtime code imports."""
    found: dict[str, set[Path]] = {}
    for base in RUNTIME_CODE:
        for path in base.rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top != "verifier":
                        found.setdefault(top, set()).add(path.relative_to(ROOT))
    return found


def _distribution_of(module: str) -> str:
    distributions = packages_distributions().get(module)
    assert distributions, f"{module} is imported but no installed distribution provides it"
    return canonicalize_name(distributions[0])


def test_the_distribution_name_is_not_the_unrelated_verifier() -> None:
    assert PROJECT["name"] == DISTRIBUTION
    assert PROJECT["scripts"] == {"verifier": "verifier.cli:main"}
    readme = (ROOT / "README.md").read_text()
    assert f"`{DISTRIBUTION}`" in readme
    assert "pip install verifier`" in readme  # the warning names the trap


@pytest.mark.parametrize("name", sorted(_requirement_lists()))
def test_no_requirement_is_listed_twice(name: str) -> None:
    requirements = [Requirement(r) for r in _requirement_lists()[name]]
    counts = Counter(canonicalize_name(r.name) for r in requirements)
    assert [n for n, c in counts.items() if c > 1] == []


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _included_extras(extra: str) -> set[str]:
    """The extras `extra` pulls in through this distribution (`name[a,b]`), transitively."""
    found: set[str] = set()
    pending = [extra]
    while pending:
        for requirement in map(Requirement, PROJECT["optional-dependencies"][pending.pop()]):
            if canonicalize_name(requirement.name) == DISTRIBUTION:
                pending.extend(requirement.extras - found)
                found |= requirement.extras
    return found


@pytest.mark.parametrize("extra", sorted(PROJECT["optional-dependencies"]))
def test_no_extra_repeats_what_it_already_installs(extra: str) -> None:
    # Every extra installs the runtime dependencies, and the extras it names: a second
    # specifier for one of those is a second place to update (and to get wrong).
    own = _names(PROJECT["optional-dependencies"][extra]) - {DISTRIBUTION}
    installed = _names(PROJECT["dependencies"])
    for included in _included_extras(extra):
        installed |= _names(PROJECT["optional-dependencies"][included]) - {DISTRIBUTION}
    assert sorted(own & installed) == []


def test_extras_refer_to_this_distribution() -> None:
    for name, requirements in _requirement_lists().items():
        for requirement in map(Requirement, requirements):
            if requirement.extras and canonicalize_name(requirement.name) in {
                "verifier",
                DISTRIBUTION,
            }:
                assert requirement.name == DISTRIBUTION, name
                assert requirement.extras <= set(PROJECT["optional-dependencies"]), name


def test_runtime_dependencies_are_exactly_what_runtime_code_imports() -> None:
    imported = _third_party_imports()
    declared = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    needed = {_distribution_of(module) for module in imported if module not in OPTIONAL_IMPORTS}
    assert sorted(needed - declared) == [], "imported by runtime code but not a dependency"
    assert sorted(declared - needed) == [], "a dependency that runtime code never imports"


def test_optional_imports_come_from_their_extra() -> None:
    imported = _third_party_imports()
    extras = PROJECT["optional-dependencies"]
    for module, extra in OPTIONAL_IMPORTS.items():
        distribution = _distribution_of(module)
        assert distribution in {canonicalize_name(Requirement(r).name) for r in extras[extra]}
        assert module in imported


@pytest.mark.parametrize("requirement", [*PROJECT["dependencies"]], ids=str)
def test_zero_major_dependencies_have_an_upper_bound(requirement: str) -> None:
    parsed = Requirement(requirement)
    lower = [s.version for s in parsed.specifier if s.operator == ">="]
    upper = [s for s in parsed.specifier if s.operator in {"<", "<=", "~=", "=="}]
    if lower and lower[0].startswith("0."):
        assert upper, f"{requirement}: a 0.x library may break in any minor release"


def test_license_changelog_and_security_policy_ship() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {_version()}" in changelog
    security = (ROOT / "SECURITY.md").read_text()
    assert "bypass" in security.lower()


def _version() -> str:
    from verifier import __version__

    return __version__


def test_every_subpackage_is_listed_in_pyproject() -> None:
    # The wheel holds every package of the source tree (setuptools' package list is explicit).
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "verifier").rglob("__init__.py")
    }
    assert found, "no packages found under verifier/"
    missing = sorted(found - listed)
    assert not missing, f"packages missing from [tool.setuptools] packages: {missing}"


def test_the_project_urls_agree_with_the_links_in_reports() -> None:
    from verifier.formats import DOCS_URL, PROJECT_URL

    assert PROJECT["urls"]["Homepage"] == PROJECT_URL
    assert DOCS_URL.startswith(PROJECT_URL + "/")
    for url in PROJECT["urls"].values():
        assert url.startswith(PROJECT_URL)


def test_the_dashboard_templates_are_package_data() -> None:
    # The dashboard's templates and assets are not Python: only package-data ships them.
    from fnmatch import fnmatch

    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["verifier.service"]
    folder = ROOT / "verifier" / "service"
    assets = [p.relative_to(folder).as_posix() for p in (folder / "templates").iterdir()]
    assert assets, "no dashboard templates found"
    unshipped = [a for a in assets if not any(fnmatch(a, pattern) for pattern in patterns)]
    assert not unshipped, f"dashboard files missing from package-data: {unshipped}"


@pytest.mark.parametrize("requirement", [*PROJECT["dependencies"]], ids=str)
def test_every_runtime_dependency_has_an_upper_bound(requirement: str) -> None:
    # verifier calls each of these directly; a new major release is tested before it is let in.
    upper = [s for s in Requirement(requirement).specifier if s.operator in {"<", "<=", "~=", "=="}]
    assert upper, f"{requirement}: no upper bound"
