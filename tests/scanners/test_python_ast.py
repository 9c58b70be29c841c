"""Remote code analysed by meaning: imports, calls and dynamic dispatch from the syntax tree."""

from __future__ import annotations

import ast

import pytest

from verifier.scanners.python_ast import analyse, fold

DANGEROUS_SOURCES = {
    "direct": ("import os\nos.system('x')", "os.system"),
    "alias-import": ("from subprocess import Popen as P\nP(['x'])", "subprocess.Popen"),
    "module-alias": ("import subprocess as sp\nsp.run('x')", "subprocess.run"),
    "assigned": ("import os\nrun = os.system\nrun('x')", "os.system"),
    "referenced-not-called": ("import os\nlist(map(os.system, ['x']))", "os.system"),
    "getattr-constant": ("import os\ngetattr(os, 'system')('x')", "os.system"),
    "getattr-concatenated": ("import os\ngetattr(os, 'sys' + 'tem')('x')", "os.system"),
    "getattr-joined": ("import os\ngetattr(os, ''.join(['sys', 'tem']))('x')", "os.system"),
    "getattr-chr": (
        "import builtins\ngetattr(builtins, chr(101) + 'val')('1')",
        "builtins.eval",
    ),
    "getattr-sliced": ("import os\ngetattr(os, 'xxsystem'[2:])('x')", "os.system"),
    "getattr-assigned": ("import os\nf = getattr(os, 'popen')\nf('x')", "os.popen"),
    "import-module-constant": (
        "import importlib\nimportlib.import_module('subprocess').call('x')",
        "subprocess.call",
    ),
    "dunder-import-constant": ("__import__('os').system('x')", "os.system"),
    "exec": ("exec('print(1)')", "exec"),
    "eval": ("eval('1')", "eval"),
    "compile": ("compile('1', 'f', 'eval')", "compile"),
    "builtins-exec": ("import builtins\nbuiltins.exec('1')", "builtins.exec"),
    "pickle-loads": ("import pickle\npickle.loads(b'')", "pickle.loads"),
    "marshal": ("import marshal\nmarshal.loads(b'')", "marshal.loads"),
    "code-type": ("import types\ntypes.FunctionType(c, {})", "types.FunctionType"),
    "torch-load-unsafe": (
        "import torch\ntorch.load('w.bin', weights_only=False)",
        "torch.load(weights_only=False)",
    ),
    "ctypes": ("import ctypes\nctypes.CDLL('libc.so.6')", "ctypes.CDLL"),
}

DYNAMIC_SOURCES = {
    "getattr-computed-module": "import os\nname = input()\ngetattr(os, name)('x')",
    "getattr-computed-builtins": "import builtins\ngetattr(builtins, n)",
    "import-module-computed": "import importlib\nimportlib.import_module(n)",
    "dunder-import-computed": "__import__(n)",
    "sys-modules": "import sys\nsys.modules['os'].system('x')",
    "globals": "globals()['ev' + 'al']('1')",
    "builtins-dunder": "__builtins__['eval']('1')",
    "vars": "vars(obj)[n]",
    "dunder-globals": "f.__globals__['os']",
    "dunder-spelled": "getattr(f, '__glo' + chr(98) + 'als__')",
    "private-piece": "getattr(obj, '__' + n)",
    "star-import": "from os import *\nsystem('x')",
    "attrgetter": "import operator\noperator.attrgetter(n)(obj)",
    "frame": "import sys\nsys._getframe(1).f_globals",
}

CLEAN_SOURCES = [
    "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
    "        return self.eval()\n",
    "import re\nPATTERN = re.compile(r'x')\n",
    "import torch\nm = torch.compile(model)\n",
    "for i in range(3):\n    layer = getattr(self, f'layer_{i}')\n",
    "act = getattr(self.config, 'hidden_act', 'gelu')\n",
    "import torch\nstate = torch.load('w.bin', map_location='cpu')\n",
    "from .configuration_tiny import TinyConfig\nx = TinyConfig.__name__\n",
    "self.__dict__.update(kwargs)\n",
    "v = getattr(module, '__version__', None)\n",
]


@pytest.mark.parametrize("case", sorted(DANGEROUS_SOURCES))
def test_dangerous_uses_are_resolved(case: str) -> None:
    source, expected = DANGEROUS_SOURCES[case]
    uses = analyse(ast.parse(source)).uses
    assert expected in {u.name for u in uses if not u.dynamic}, uses


@pytest.mark.parametrize("case", sorted(DYNAMIC_SOURCES))
def test_dynamic_dispatch_is_dangerous(case: str) -> None:
    uses = analyse(ast.parse(DYNAMIC_SOURCES[case])).uses
    assert any(u.dynamic for u in uses), uses


@pytest.mark.parametrize("source", CLEAN_SOURCES)
def test_normal_modeling_code_is_clean(source: str) -> None:
    facts = analyse(ast.parse(source))
    assert facts.uses == []


def test_imports_and_network_are_reported() -> None:
    facts = analyse(
        ast.parse(
            "import torch\nfrom transformers import PreTrainedModel\nfrom . import utils\n"
            "import requests\nrequests.get('https://example.org')\n"
            "import importlib\nimportlib.import_module('safetensors')\n"
            "getattr(self, 'layer_' + str(i))\n"
        )
    )
    assert {"torch", "transformers", ".", "requests", "importlib", "safetensors"} <= facts.imports
    assert facts.network == {"requests.get"}
    assert facts.computed_attributes == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'a' + 'b'", "ab"),
        ("f'{\"x\"}y'", "xy"),
        ("'-'.join(('a', 'b'))", "a-b"),
        ("'EVAL'.lower()", "eval"),
        ("'xsystemx'[1:-1]", "system"),
        ("'sys_tem'.replace('_', '')", "system"),
        ("chr(111) + chr(115)", "os"),
        ("name + 'x'", None),
        ("'%s' % 'x'", None),
    ],
)
def test_fold(source: str, expected: str | None) -> None:
    node = ast.parse(source, mode="eval").body
    assert fold(node) == expected
