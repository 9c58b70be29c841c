"""Keras model configs: Lambda layers, custom objects and modules outside Keras.

The same walk serves `.keras` archives (their `config.json` member), Keras-style JSON configs
and the `model_config` / `training_config` attributes of legacy `.h5` files (read by offsets,
see `hdf5.py`). Nothing is deserialised: the config is only parsed as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.hdf5 import Hdf5Error, root_attributes
from verifier.scanners.interface import ScanContext, Scanner, ScanStream

#: Module prefixes Keras itself and the Keras team's model libraries serialise.
KERAS_MODULES = ("keras", "tf_keras", "tensorflow.keras", "keras_hub", "keras_nlp", "keras_cv")
#: Functions reachable inside Keras that download, write or switch off safe mode
#: (CVE-2025-8747 `get_file`, CVE-2025-9906 `enable_unsafe_deserialization`).
DANGEROUS_FUNCTIONS = frozenset(
    {
        "get_file",
        "enable_unsafe_deserialization",
        "load_model",
        "save_model",
        "load_weights",
        "save_weights",
        "model_from_json",
        "model_from_yaml",
        "model_from_config",
        "deserialize_keras_object",
        "register_keras_serializable",
        "set_backend",
    }
)
#: Largest config attribute parsed.
MAX_CONFIG = 64 << 20
#: Largest compressed HDF5 archive member held in memory to be read by offset.
MAX_BUFFERED = 256 << 20
_CONFIG_ATTRIBUTES = ("model_config", "training_config")
_MAX_NODES = 1_000_000


def looks_like_keras_config(document: Any) -> bool:
    """Whether a parsed JSON document is a serialised Keras object."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("class_name"), str)
        and "config" in document
    )


def _keras_module(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in KERAS_MODULES)


def _layer_name(node: dict[str, Any]) -> str:
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) else str(node.get("name", "?"))


def config_findings(
    document: Any, ctx: ScanContext, *, where: str = "Keras config", member: str | None = None
) -> Iterator[Finding]:
    """Findings for a parsed Keras config: Lambda layers, custom objects, foreign modules."""
    stack: list[tuple[Any, bool]] = [(document, False)]
    visited = 0
    while stack:
        node, in_lambda = stack.pop()
        visited += 1
        if visited > _MAX_NODES:
            yield ctx.finding(
                "KERAS-CONFIG-INVALID",
                Severity.HIGH,
                f"{where} has more than {_MAX_NODES} entries; not analysed further",
                member=member,
            )
            return
        if isinstance(node, list):
            stack.extend((item, in_lambda) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        if isinstance(class_name, str):
            found = list(_check_object(node, class_name, ctx, where, member, in_lambda))
            yield from found
            in_lambda = in_lambda or any(f.code == "KERAS-LAMBDA-LAYER" for f in found)
        stack.extend((value, in_lambda) for value in node.values())


def _check_object(
    node: dict[str, Any],
    class_name: str,
    ctx: ScanContext,
    where: str,
    member: str | None,
    in_lambda: bool,
) -> Iterator[Finding]:
    module = node.get("module")
    lambda_like = class_name in ("Lambda", "__lambda__") or class_name.endswith(">Lambda")
    if lambda_like and not in_lambda:
        config = node.get("config")
        bytecode = isinstance(config, dict) and (
            "code" in config or isinstance(config.get("function"), list | dict)
        )
        yield ctx.finding(
            "KERAS-LAMBDA-LAYER",
            Severity.CRITICAL,
            f"{where} has a Lambda layer {_layer_name(node)!r}"
            + (" with marshalled Python bytecode" if bytecode else "")
            + ": loading it with safe_mode off (or in Keras 2) runs that code",
            member=member,
            evidence=_layer_name(node),
        )
    if isinstance(module, str) and module and not _keras_module(module):
        yield ctx.finding(
            "KERAS-UNSAFE-MODULE",
            Severity.CRITICAL,
            f"{where} makes Keras import {module}.{class_name}: a module outside Keras, "
            "imported (and called) while loading (CVE-2025-1550)",
            member=member,
            evidence=f"{module}.{class_name}",
        )
    function = node.get("config") if class_name == "function" else class_name
    if isinstance(function, str) and function.rsplit(".", 1)[-1] in DANGEROUS_FUNCTIONS:
        yield ctx.finding(
            "KERAS-DANGEROUS-FUNCTION",
            Severity.CRITICAL,
            f"{where} calls {module or 'keras'}.{function} while loading: it downloads or "
            "writes files, or turns safe mode off",
            member=member,
            evidence=f"{module}.{function}" if module else function,
        )
    registered = node.get("registered_name")
    custom = registered if isinstance(registered, str) and ">" in registered else None
    if custom is None and ">" in class_name:
        custom = class_name
    if custom is not None and custom.split(">", 1)[0] not in KERAS_MODULES:
        yield ctx.finding(
            "KERAS-CUSTOM-OBJECT",
            Severity.HIGH,
            f"{where} needs the custom object {custom!r}: its code is not in the file and "
            "must come from somewhere the loader trusts",
            member=member,
            evidence=custom,
        )


class Hdf5Scanner(Scanner):
    """Legacy Keras `.h5` files: the root attributes holding the model and training config."""

    formats = frozenset({FileFormat.HDF5})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for the Keras configs stored as root attributes.

        Raises:
            ScanLimitError: never; an unreadable structure is HDF5-UNSUPPORTED.
        """
        yield from scan_hdf5(stream, ctx, member=None)


def scan_hdf5(stream: ScanStream, ctx: ScanContext, *, member: str | None) -> Iterator[Finding]:
    """Read the root attributes by offset; analyse `model_config` and `training_config`."""
    read_at = stream.read_at
    if stream.size and not stream.read_at(0, 8):
        # A member of a compressed archive cannot be read by offset: hold a small one in memory.
        if stream.size > MAX_BUFFERED:
            yield ctx.finding(
                "HDF5-UNSUPPORTED",
                Severity.HIGH,
                f"compressed HDF5 member of {stream.size} bytes is larger than the "
                f"{MAX_BUFFERED >> 20} MiB the scanner buffers; not checked",
                member=member,
            )
            return
        data = stream.read(stream.size)

        def read_at(offset: int, n: int) -> bytes:
            return data[offset : offset + n]

    try:
        attributes = root_attributes(read_at, stream.size)
    except Hdf5Error as exc:
        yield ctx.finding(
            "HDF5-UNSUPPORTED",
            Severity.HIGH,
            f"HDF5 structure not understood, so a Keras config in it could not be checked: {exc}",
            member=member,
        )
        return
    for attribute in attributes:
        if attribute.name not in _CONFIG_ATTRIBUTES:
            continue
        where = f"HDF5 attribute {attribute.name!r}"
        if attribute.value is None:
            yield _invalid(ctx, where, "it is not a string", member)
            continue
        try:
            document = json.loads(attribute.value.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            yield _invalid(ctx, where, f"not JSON ({type(exc).__name__})", member)
            continue
        yield from config_findings(document, ctx, where=where, member=member)


def _invalid(ctx: ScanContext, where: str, why: str, member: str | None) -> Finding:
    return ctx.finding(
        "KERAS-CONFIG-INVALID",
        Severity.HIGH,
        f"{where} could not be analysed: {why}",
        member=member,
    )
