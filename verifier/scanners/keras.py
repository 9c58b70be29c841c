"""Keras model configs: Lambda layers, custom objects and modules outside Keras.

The same walk serves `.keras` archives (their `config.json` member), Keras-style JSON configs
and the `model_config` / `training_config` attributes of legacy `.h5` files (read by offsets,
see `hdf5.py`). Nothing is deserialised: the config is only parsed as JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from verifier.bounded_json import MODEL_CONFIG, JsonLimitError
from verifier.bounded_json import loads as bounded_loads
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.hdf5 import Hdf5Error, root_attributes
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.members import scan_member
from verifier.scanners.pickle_walk import BytesStream
from verifier.scanners.remote_code import config_findings as code_findings
from verifier.scanners.sniff import identify

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
#: Classes Keras 2.11 to 2.15 register themselves under the default `Custom>` package (the
#: optimizers), so `Custom>Adam` in the training config of an `.h5` file Keras 2 saved names
#: Keras's own class: the name resolves to nothing else unless the loading program registers it.
KERAS2_SELF_REGISTERED = frozenset(
    {
        "Adadelta",
        "Adafactor",
        "Adagrad",
        "Adam",
        "AdamW",
        "Adamax",
        "Ftrl",
        "Lion",
        "Nadam",
        "RMSprop",
        "SGD",
    }
)
#: Config keys whose string value is a file (or URL) a layer reads when it is built: lookup
#: vocabularies (`StringLookup`, `IntegerLookup`, `TextVectorization`; tf.io.gfile also opens
#: URLs) and tokenizer assets. Keras itself saves these inline or as archive assets.
FILE_KEYS = frozenset(
    {
        "vocabulary",
        "vocabulary_file",
        "vocab_file",
        "merges",
        "merges_file",
        "proto",
        "spm_model_file",
        "filepath",
        "file_path",
        "idf_weights",
    }
)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
#: Largest base64 torch module decoded to be scanned.
MAX_EMBEDDED = 256 << 20
#: Largest config attribute parsed.
MAX_CONFIG = 64 << 20
#: Largest compressed HDF5 archive member inflated (to a temporary file) to be read by offset.
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
        urls = sorted(set(_URL.findall(json.dumps(node))))
        yield ctx.finding(
            "KERAS-DANGEROUS-FUNCTION",
            Severity.CRITICAL,
            f"{where} calls {module or 'keras'}.{function} while loading: it downloads or "
            "writes files, or turns safe mode off"
            + (f" (URL {', '.join(urls)[:300]})" if urls else ""),
            member=member,
            evidence=f"{module}.{function}" if module else function,
        )
    registered = node.get("registered_name")
    custom = registered if isinstance(registered, str) and ">" in registered else None
    if custom is None and ">" in class_name:
        custom = class_name
    if custom is not None and _keras2_builtin(custom):
        custom = None
    yield from _torch_module(node, class_name, ctx, where, member)
    yield from _file_references(node, ctx, where, member)
    if custom is not None and custom.split(">", 1)[0] not in KERAS_MODULES:
        yield ctx.finding(
            "KERAS-CUSTOM-OBJECT",
            Severity.HIGH,
            f"{where} needs the custom object {custom!r}: its code is not in the file and "
            "must come from somewhere the loader trusts",
            member=member,
            evidence=custom,
        )


def _keras2_builtin(name: str) -> bool:
    package, _, short = name.partition(">")
    return package == "Custom" and short in KERAS2_SELF_REGISTERED


def _torch_module(
    node: dict[str, Any], class_name: str, ctx: ScanContext, where: str, member: str | None
) -> Iterator[Finding]:
    """TorchModuleWrapper: a whole PyTorch module, pickled, base64 in the config."""
    config = node.get("config")
    if class_name.rsplit(">", 1)[-1] != "TorchModuleWrapper" or not isinstance(config, dict):
        return
    encoded = config.get("module")
    if not isinstance(encoded, str):
        return
    layer = _layer_name(node)
    yield ctx.finding(
        "KERAS-TORCH-MODULE",
        Severity.CRITICAL,
        f"{where} has a TorchModuleWrapper {layer!r} holding a serialised PyTorch module: "
        "Keras unpickles it with torch.load(weights_only=False) when safe mode is off, which "
        "runs whatever the pickle calls",
        member=member,
        evidence=layer,
    )
    if len(encoded) > MAX_EMBEDDED * 4 // 3 + 4:
        return
    try:
        data = base64.b64decode(encoded.encode("ascii"), validate=False)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return
    # What the pickle imports, attributed to the layer (its own findings decide severity).
    inner = f"{member}!{layer}.module" if member else f"{layer}.module"
    stream = BytesStream(data)
    fmt = identify(data[:65536], len(data))
    yield from scan_member(stream, ctx, fmt, member=inner, depth=1)


def _file_references(
    node: dict[str, Any], ctx: ScanContext, where: str, member: str | None
) -> Iterator[Finding]:
    config = node.get("config")
    if not isinstance(config, dict):
        return
    for key in sorted(FILE_KEYS & config.keys()):
        value = config[key]
        if isinstance(value, str) and value.strip():
            yield ctx.finding(
                "KERAS-FILE-REFERENCE",
                Severity.HIGH,
                f"{where} layer {_layer_name(node)!r} reads the file or URL its config names "
                f"in {key!r} when it is built: {value[:200]!r}",
                member=member,
                evidence=value[:200],
            )


def scan_config_member(
    stream: ScanStream, ctx: ScanContext, *, member: str, depth: int
) -> Iterator[Finding]:
    """The `config.json` of a `.keras` archive, read as Keras reads it: `json.loads` on the
    bytes, whatever their encoding (UTF-8, UTF-16 or UTF-32, with or without a BOM).

    A member that is not JSON is reported and then scanned by content like any other member.
    """
    data = stream.read(MAX_CONFIG + 1)
    if len(data) > MAX_CONFIG:
        yield _invalid(ctx, "config.json", f"larger than {MAX_CONFIG} bytes", member)
        return
    try:
        document = _bounded_json(data)
    except JsonLimitError as exc:
        yield _invalid(ctx, "config.json", f"past the JSON caps ({exc})", member)
        return
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        yield _invalid(ctx, "config.json", f"not JSON ({type(exc).__name__})", member)
        fmt = identify(data[:65536], len(data))
        yield from scan_member(BytesStream(data), ctx, fmt, member=member, depth=depth)
        return
    for finding in code_findings(document, ctx):
        yield _in_member(finding, member)
    yield from config_findings(document, ctx, where="Keras config.json", member=member)


def _in_member(finding: Finding, member: str) -> Finding:
    return Finding(
        code=finding.code,
        severity=finding.severity,
        message=finding.message,
        file=finding.file,
        member=member,
        offset=finding.offset,
        evidence=finding.evidence,
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
    if not stream.size or stream.read_at(0, 8):
        yield from _hdf5_findings(stream.read_at, stream.size, ctx, member)
        return
    # A member of a compressed archive cannot be read by offset: it is inflated into an
    # unnamed temporary file and read from there. Held in memory, a 250 MB member peaked at
    # 322 MiB (835 MB when it was held three times over).
    if stream.size > MAX_BUFFERED:
        yield ctx.finding(
            "HDF5-UNSUPPORTED",
            Severity.HIGH,
            f"compressed HDF5 member of {stream.size} bytes is larger than the "
            f"{MAX_BUFFERED >> 20} MiB the scanner inflates to read by offset; not checked",
            member=member,
        )
        return
    try:
        with tempfile.TemporaryFile(prefix="verifier-hdf5-") as spill:
            copied = 0
            while copied < stream.size and (
                chunk := stream.read(min(1 << 20, stream.size - copied))
            ):
                spill.write(chunk)
                copied += len(chunk)
            spill.flush()
            descriptor = spill.fileno()

            def read_at(offset: int, n: int) -> bytes:
                return os.pread(descriptor, n, offset) if offset >= 0 and n > 0 else b""

            findings = list(_hdf5_findings(read_at, copied, ctx, member))
    except OSError as exc:  # no room or no temporary folder: refused, never a crash
        findings = [_unspilled(ctx, exc, member)]
    yield from findings


def _unspilled(ctx: ScanContext, exc: OSError, member: str | None) -> Finding:
    return ctx.finding(
        "HDF5-UNSUPPORTED",
        Severity.HIGH,
        "compressed HDF5 member could not be inflated to a temporary file "
        f"({exc.strerror or exc}); not checked",
        member=member,
    )


def _hdf5_findings(
    read_at: Callable[[int, int], bytes], size: int, ctx: ScanContext, member: str | None
) -> Iterator[Finding]:
    try:
        attributes = root_attributes(read_at, size)
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
            # As Keras does (json.loads on what h5py returns): any UTF encoding is detected.
            document = _bounded_json(attribute.value)
        except JsonLimitError as exc:
            yield _invalid(ctx, where, f"past the JSON caps ({exc})", member)
            continue
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            yield _invalid(ctx, where, f"not JSON ({type(exc).__name__})", member)
            continue
        yield from config_findings(document, ctx, where=where, member=member)


def _bounded_json(data: bytes | str) -> Any:
    """`json.loads` as Keras calls it (bytes in any UTF encoding), under the model-config caps
    (a 64 MiB document of empty lists is 21 million objects).

    Raises:
        JsonLimitError: the document is over a cap (nothing was parsed).
        ValueError: not JSON (UnicodeDecodeError included).
    """
    if isinstance(data, bytes) and (encoding := json.detect_encoding(data)) != "utf-8":
        data = data.decode(encoding, "surrogatepass")  # UTF-8 bytes are checked as they are
    return bounded_loads(data, MODEL_CONFIG)


def _invalid(ctx: ScanContext, where: str, why: str, member: str | None) -> Finding:
    return ctx.finding(
        "KERAS-CONFIG-INVALID",
        Severity.HIGH,
        f"{where} could not be analysed: {why}",
        member=member,
    )
