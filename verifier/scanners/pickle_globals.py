"""Which pickle imports are safe, which are dangerous, and how an import is classified."""

from __future__ import annotations

import enum


class GlobalClass(enum.StrEnum):
    """How a pickle import is judged."""

    SAFE = "safe"
    DANGEROUS = "dangerous"
    UNKNOWN = "unknown"


_TORCH_STORAGES = [
    "FloatStorage",
    "DoubleStorage",
    "HalfStorage",
    "BFloat16Storage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "ComplexFloatStorage",
    "ComplexDoubleStorage",
    "QInt8Storage",
    "QUInt8Storage",
    "QInt32Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
    "UntypedStorage",
]

_TORCH_DTYPES = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "complex64",
    "complex128",
    "float8_e4m3fn",
    "float8_e5m2",
]

#: Callables that legitimate checkpoints import. Everything here only rebuilds data:
#: none of them reads files, runs processes or resolves further names.
SAFE_GLOBALS: frozenset[str] = frozenset(
    [
        "collections.OrderedDict",
        "collections.defaultdict",
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
        "copyreg._reconstructor",
        "builtins.object",
        # protocol 0-2 pickles of bytes encode them through this; it only builds bytes.
        "_codecs.encode",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter",
        "torch.Size",
        "torch.device",
        "torch.storage._load_from_bytes",
        "torch.per_tensor_affine",
        "torch.per_channel_affine",
        "torch.strided",
        "torch.sparse_coo",
        *(f"torch.{name}" for name in _TORCH_STORAGES),
        *(f"torch.{name}" for name in _TORCH_DTYPES),
        # joblib's array wrapper: joblib.load reads the array's raw bytes after its BUILD
        # (the walk skips them by shape and dtype; object arrays' inline pickles are walked).
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        "numpy.core.numeric._frombuffer",
        *(
            f"numpy.dtypes.{n}DType"
            for n in [
                "Float64",
                "Float32",
                "Float16",
                "Int64",
                "Int32",
                "Int16",
                "Int8",
                "UInt64",
                "UInt32",
                "UInt16",
                "UInt8",
                "Bool",
            ]
        ),
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
