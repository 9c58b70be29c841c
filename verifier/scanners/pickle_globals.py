"""Which pickle imports are safe, which are dangerous, and how an import is classified."""

from __future__ import annotations

import enum

from verifier.scanners.lightning_globals import LIGHTNING_GLOBALS
from verifier.scanners.sklearn_globals import SKLEARN_GLOBALS
from verifier.scanners.transformers_globals import TRANSFORMERS_TRAINING_GLOBALS


class GlobalClass(enum.StrEnum):
    """How a pickle import is judged."""

    SAFE = "safe"
    DANGEROUS = "dangerous"
    UNKNOWN = "unknown"


#: What `torch.load(weights_only=True)` itself allows in torch 2.13
#: (`torch._weights_only_unpickler._get_allowed_globals`), written out so verifier never
#: imports torch; `tests/scanners/test_torch_allowlist.py` compares it with the live list.
#: Every entry rebuilds a tensor, a storage or a plain value; docs/scanners.md argues the
#: differences between this list and verifier's.
TORCH_WEIGHTS_ONLY_GLOBALS: frozenset[str] = frozenset(
    [
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.complex",
        "builtins.set",
        "collections.Counter",
        "collections.OrderedDict",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout",
        "torch._tensor._rebuild_from_type_v2",
        *(
            f"torch._utils._rebuild_{name}"
            for name in (
                "device_tensor_from_cpu_tensor",
                "device_tensor_from_numpy",
                "meta_tensor_no_storage",
                "nested_tensor",
                "parameter",
                "parameter_with_state",
                "qtensor",
                "sparse_tensor",
                "tensor",
                "tensor_v2",
                "tensor_v3",
                "wrapper_subclass",
            )
        ),
        # dtypes: those with a storage type, the "new" dtypes, and the sub-byte integers.
        *(
            f"torch.{name}"
            for name in [
                "bfloat16",
                "bits16",
                "bits1x8",
                "bits2x4",
                "bits4x2",
                "bits8",
                "bool",
                "complex128",
                "complex32",
                "complex64",
                "float16",
                "float32",
                "float4_e2m1fn_x2",
                "float64",
                "float8_e4m3fn",
                "float8_e4m3fnuz",
                "float8_e5m2",
                "float8_e5m2fnuz",
                "float8_e8m0fnu",
                "int16",
                "int32",
                "int64",
                "int8",
                "qint32",
                "qint8",
                "quint2x4",
                "quint4x2",
                "quint8",
                "uint16",
                "uint32",
                "uint64",
                "uint8",
            ]
        ),
        *(f"torch.{kind}{n}" for kind in ("int", "uint") for n in range(1, 8)),
        # Quantisation schemes.
        *(
            f"torch.per_{name}"
            for name in (
                "tensor_affine",
                "tensor_symmetric",
                "channel_affine",
                "channel_symmetric",
                "channel_affine_float_qparams",
            )
        ),
        # Tensor and storage classes (legacy typed storages are rebuilt as storage types).
        *(
            f"torch.{prefix}{kind}{suffix}"
            for prefix in ("", "cuda.")
            for suffix in ("Tensor", "Storage")
            for kind in (
                [
                    "BFloat16",
                    "Bool",
                    "Byte",
                    "Char",
                    "Double",
                    "Float",
                    "Half",
                    "Int",
                    "Long",
                    "Short",
                ]
                + (["ComplexDouble", "ComplexFloat"] if suffix == "Storage" else [])
                + (
                    ["QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8"]
                    if suffix == "Storage" and not prefix
                    else []
                )
            )
        ),
        *(
            f"torch.{prefix}sparse.{kind}Tensor"
            for prefix in ("", "cuda.")
            for kind in [
                "BFloat16",
                "Byte",
                "Char",
                "Double",
                "Float",
                "Half",
                "Int",
                "Long",
                "Short",
            ]
        ),
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
    ]
)

#: Python values real training code pickles (hyper-parameters, trainer state): building
#: them runs no code of the pickle's choosing, touches no file and resolves no name.
_STDLIB_VALUES = [
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.complex",
    "builtins.bytearray",
    "builtins.range",
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.str",
    "builtins.bytes",
    "builtins.object",
    "copyreg._reconstructor",
    # protocol 0-2 pickles of bytes encode them through this; it only builds bytes.
    "_codecs.encode",
    # `types` as a whole is dangerous (FunctionType, CodeType); SimpleNamespace only holds
    # attributes (argparse-style `training_args`).
    "types.SimpleNamespace",
    # argparse's result, as scripts hand it to Lightning's save_hyperparameters (`argparse` as
    # a whole stays unknown: FileType opens files, a parser reads `@file` arguments).
    "argparse.Namespace",
    # Path objects are names: building one reads nothing (Python 3.13 moved them).
    *(
        f"{module}.{name}"
        for module in ("pathlib", "pathlib._local")
        for name in ("PurePath", "PurePosixPath", "PureWindowsPath", "Path", "PosixPath")
    ),
    "pathlib.WindowsPath",
    "pathlib._local.WindowsPath",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
]

_NUMPY_DTYPES = [
    "Bool",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Byte",
    "UByte",
    "Short",
    "UShort",
    "Int",
    "UInt",
    "Long",
    "ULong",
    "LongLong",
    "ULongLong",
    "Float16",
    "Float32",
    "Float64",
    "LongDouble",
    "Complex64",
    "Complex128",
    "CLongDouble",
    "Bytes",
    "Str",
    "Void",
    "DateTime64",
    "TimeDelta64",
    "String",
]

#: NumPy's reconstructors for arrays, scalars, masked arrays and random generators.
_NUMPY = [
    "numpy.ndarray",
    "numpy.dtype",
    *(
        f"numpy.{core}.{name}"
        for core in ("core", "_core")
        for name in ("multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer")
    ),
    *(f"numpy.dtypes.{name}DType" for name in _NUMPY_DTYPES),
    # StringDType pickles as this call with its keyword arguments (`coerce`, `na_object`).
    "numpy._core._internal._convert_to_stringdtype_kwargs",
    "numpy.core._internal._convert_to_stringdtype_kwargs",
    # Masked arrays: builds an empty array, a mask and the subtype named in the pickle
    # (itself classified on its own).
    "numpy.ma.core._mareconstruct",
    "numpy.ma.core.MaskedArray",
    "numpy.ma.MaskedArray",
    # Random state: bit generators are built from a seed, then given their state dict;
    # SeedSequence's Cython unpickler builds only a SeedSequence (anything else is a
    # TypeError). The three `_pickle` constructors call what they are given: each call they
    # make is walked as a call of its own (`pickle_calls.py`).
    *(
        f"numpy.random._pickle.__{name}_ctor"
        for name in ("bit_generator", "generator", "randomstate")
    ),
    *(
        f"numpy.random.{module}.{name}"
        for module, name in (
            ("_mt19937", "MT19937"),
            ("_pcg64", "PCG64"),
            ("_pcg64", "PCG64DXSM"),
            ("_philox", "Philox"),
            ("_sfc64", "SFC64"),
            ("bit_generator", "SeedSequence"),
            ("bit_generator", "__pyx_unpickle_SeedSequence"),
            ("mtrand", "RandomState"),
            ("_generator", "Generator"),
        )
    ),
]

#: Callables that legitimate checkpoints import. Everything here only rebuilds data: none
#: of them reads files, runs processes or resolves further names, whatever its arguments
#: (torch's `_rebuild_from_type_v2` can call any of them with any arguments). The exceptions
#: are followed by the walk, never trusted by name: `torch.storage._load_from_bytes` (a
#: nested loader: its bytes are scanned) and the reconstructors that call one of their
#: arguments (`pickle_calls.MODELLED`: the call they make is walked as a call of its own).
SAFE_GLOBALS: frozenset[str] = frozenset(
    [
        *TORCH_WEIGHTS_ONLY_GLOBALS,
        *_STDLIB_VALUES,
        # Legacy torch.save: its bytes are scanned as the nested torch.load they feed.
        "torch.storage._load_from_bytes",
        # Layouts and memory formats as torch.save of a bare layout writes them (older torch).
        "torch.strided",
        "torch.sparse_coo",
        # joblib's array wrapper: joblib.load reads the array's raw bytes after its BUILD
        # (the walk skips them by shape and dtype; object arrays' inline pickles are walked).
        "joblib.numpy_pickle.NumpyArrayWrapper",
        *_NUMPY,
        # scikit-learn estimators, pipelines and their fitted parts, argued per family in
        # sklearn_globals.py and docs/scanners.md (classes that call a callable they hold are
        # not listed).
        *SKLEARN_GLOBALS,
        # transformers' TrainingArguments as every Trainer checkpoint pickles it
        # (training_args.bin), argued in transformers_globals.py and docs/scanners.md.
        *TRANSFORMERS_TRAINING_GLOBALS,
        # Lightning's AttributeDict, contained by the walk (pickle_state.py), argued in
        # lightning_globals.py and docs/scanners.md.
        *LIGHTNING_GLOBALS,
    ]
)

#: Modules whose every attribute is treated as code execution, file, network or import access.
DANGEROUS_MODULES: frozenset[str] = frozenset(
    [
        "os",
        "posix",
        "nt",
        "posixpath",
        "ntpath",
        "subprocess",
        "sys",
        "pty",
        "commands",
        "shutil",
        "socket",
        "ssl",
        "importlib",
        "imp",
        "runpy",
        "pip",
        "pkgutil",
        "webbrowser",
        # Importing these runs their code: antigravity opens a web browser, this prints.
        "antigravity",
        "this",
        "ctypes",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "joblib",
        "marshal",
        "types",
        "code",
        "codeop",
        "pdb",
        "bdb",
        "timeit",
        "cProfile",
        "profile",
        "pydoc",
        "multiprocessing",
        "asyncio",
        "threading",
        "_thread",
        "signal",
        "tempfile",
        "glob",
        "http",
        "urllib",
        "urllib2",
        "requests",
        "httpx",
        "ftplib",
        "smtplib",
        "telnetlib",
        "xmlrpc",
        "shelve",
        "linecache",
        "zipimport",
        "platform",
        "uuid",
        "venv",
        "ensurepip",
        "distutils",
        "setuptools",
        "torch.hub",
        "torch.jit",
        "torch.package",
        "torch.utils.collect_env",
        "torch.utils.cpp_extension",
        "torch.serialization",
        "numpy.f2py",
        "numpy.testing",
        "numpy.distutils",
        "numpy.lib.npyio",
        "logging",
        "io",
        "_io",
        "builtins.__import__",
    ]
)

#: Single callables that execute code, reflect on objects or load further pickles.
DANGEROUS_GLOBALS: frozenset[str] = frozenset(
    [
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.__import__",
        "builtins.open",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.input",
        "builtins.breakpoint",
        "builtins.help",
        "builtins.exit",
        "builtins.quit",
        "builtins.memoryview",
        "builtins.type",
        "builtins.super",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.itemgetter",
        "functools.partial",
        "functools.reduce",
        "codecs.open",
        "codecs.EncodedFile",
        "codecs.StreamReaderWriter",
        "torch.load",
        "torch.save",
        "numpy.load",
        "numpy.save",
        "numpy.fromfile",
        "numpy.loadtxt",
        "copyreg.__newobj__",
    ]
)


def canonical_module(module: str) -> str:
    """Map Python 2 module names a pickle may use to their Python 3 names."""
    if module == "__builtin__":
        return "builtins"
    return module


def classify(module: str, name: str) -> GlobalClass:
    """Classify the import `module.name` that a pickle asks the unpickler to resolve.

    Allowlist first: anything not known to be safe is at least unknown. A dotted `name`
    walks attributes (protocol 4 and later resolve it with getattr), so it is only safe
    when the full dotted path is on the allowlist.
    """
    module = canonical_module(module)
    full = f"{module}.{name}"
    if full in SAFE_GLOBALS:
        return GlobalClass.SAFE
    if full in DANGEROUS_GLOBALS:
        return GlobalClass.DANGEROUS
    parts = full.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in DANGEROUS_MODULES:
            return GlobalClass.DANGEROUS
    if "." in name:
        # Attribute traversal such as `shlex` + `os.system`: reach through a harmless module.
        for i in range(len(parts)):
            if ".".join(parts[i:]) in DANGEROUS_GLOBALS or parts[i] in DANGEROUS_MODULES:
                return GlobalClass.DANGEROUS
    if any(part.startswith("__") for part in parts):
        # Dunder attributes (`__class__`, `__globals__`, `__subclasses__`) reach interpreter
        # internals: the classic sandbox-escape path.
        return GlobalClass.DANGEROUS
    return GlobalClass.UNKNOWN
