"""Safety lint: no shell, no unpickling, no unsafe YAML, no eval/exec in our own source.

Every `.py` file under the checked folders is parsed with `ast` (never imported), and each
rule below names what it refuses and why. A finding reads `path:line: rule: what`. A call
that a rule refuses but that is needed and safe goes into `ALLOWED`, with the function it sits
in and the reason; an entry that matches nothing fails too, so the list cannot go stale.

Ray pickles objects between its processes: that is our own data (chunk descriptors, records),
pickled by Ray's code, not ours, and so outside this lint.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from media import ROOT

# Folders whose files every rule checks; the shell rule also covers the tests.
SOURCE_DIRS = ("vidrefocus", "pipelines", "samples", "cluster")
SHELL_DIRS = (*SOURCE_DIRS, "tests")

# Modules whose loaders run code from the bytes they read (pickle and its relatives).
PICKLE_MODULES = frozenset(
    {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "marshal", "joblib"}
)
# Calls that hand their string to a shell, whatever their arguments.
SHELL_CALLS = frozenset(
    {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
     "asyncio.create_subprocess_shell"}
)  # fmt: skip
# Calls that unpickle what they read. Weights are safetensors only (DESIGN.md, Weights).
UNPICKLING_CALLS = frozenset(
    {"torch.load", "torch.serialization.load", "torch.hub.load",
     "torch.hub.load_state_dict_from_url", "pandas.read_pickle"}
)  # fmt: skip
# yaml loaders that build arbitrary Python objects; yaml.safe_load is the one to use.
YAML_UNSAFE = frozenset({"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
                         "yaml.full_load_all"})  # fmt: skip
YAML_SAFE_LOADERS = frozenset({"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader",
                               "yaml.CBaseLoader"})  # fmt: skip
# `from_pretrained` receivers that load no weights (text, settings), so need no safetensors flag.
NO_WEIGHTS = ("Tokenizer", "TokenizerFast", "Processor", "FeatureExtractor", "Config")


@dataclass(frozen=True)
class Allowed:
    """A refused call that is needed and safe: where it is, and why it may stay.

    Attributes:
        path: the file, relative to the repository root.
        rule: the rule it breaks (a key of `RULES`).
        where: the enclosing function (`Class.method`), or "<module>".
        reason: why it is safe, for the reviewer.
    """

    path: str
    rule: str
    where: str
    reason: str


# Empty today. A `torch.load` of a trusted internal file would be listed here, and must still
# pass `weights_only=True` (the rule checks that even for listed calls). An entry reads:
#   Allowed("vidrefocus/train/deblur.py", "unpickle", "Trainer.resume",
#           "optimizer state this trainer wrote in its own run folder; weights_only=True"),
ALLOWED: tuple[Allowed, ...] = ()

RULES = {
    "shell": "runs a shell (pass an argument list to subprocess, never shell=True)",
    "pickle-import": "imports a pickle-family module (loading its data runs code)",
    "unpickle": "torch.load and kin unpickle what they read (weights are safetensors only)",
    "np-load": "np.load without allow_pickle=False (a .npy file could run code)",
    "yaml-load": "yaml loader that builds Python objects (use yaml.safe_load)",
    "eval-exec": "eval/exec of a string",
    "from-pretrained": "from_pretrained without use_safetensors=True (could unpickle a .bin)",
}


@dataclass(frozen=True)
class Finding:
    """One refused construct; `allowable` is False where even `ALLOWED` cannot excuse it."""

    path: str
    line: int
    rule: str
    where: str
    what: str
    allowable: bool = True

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.what} ({RULES[self.rule]})"


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


class _Checker(ast.NodeVisitor):
    """Collects findings in one module; knows its import aliases (`import numpy as np`)."""

    def __init__(self, path: str, shell_only: bool) -> None:
        self.path = path
        self.shell_only = shell_only
        self.aliases: dict[str, str] = {}
        self.scope: list[str] = []
        self.findings: list[Finding] = []

    def _add(self, node: ast.AST, rule: str, what: str, *, allowable: bool = True) -> None:
        if self.shell_only and rule != "shell":
            return
        where = ".".join(self.scope) or "<module>"
        self.findings.append(Finding(self.path, node.lineno, rule, where, what, allowable))

    def _qualified(self, node: ast.expr) -> str | None:
        # `np.load` -> `numpy.load`, `from os import system` -> `os.system`.
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        full = self.aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped  # noqa: N815

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[(alias.asname or alias.name).split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )
            if alias.name.split(".")[0] in PICKLE_MODULES:
                self._add(node, "pickle-import", f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        if module.split(".")[0] in PICKLE_MODULES:
            self._add(node, "pickle-import", f"from {module} import ...")

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualified(node.func) or ""
        shell = _keyword(node, "shell")
        if shell is not None and not _is_const(shell, False):
            self._add(node, "shell", f"{name or 'a call'}(..., shell=...)")
        if name in SHELL_CALLS:
            self._add(node, "shell", f"{name}()")
        if name in ("importlib.import_module", "__import__") and node.args:
            target = node.args[0]
            if isinstance(target, ast.Constant) and str(target.value).split(".")[0] in (
                PICKLE_MODULES
            ):
                self._add(node, "pickle-import", f"{name}({target.value!r})")
        if name in UNPICKLING_CALLS:
            # Only a torch.load that refuses pickled code may be listed in ALLOWED.
            safe = name == "torch.load" and _is_const(_keyword(node, "weights_only"), True)
            what = f"{name}(..., weights_only=True)" if safe else f"{name}()"
            self._add(node, "unpickle", what, allowable=safe)
        if name == "numpy.load" and not _is_const(_keyword(node, "allow_pickle"), False):
            self._add(node, "np-load", "numpy.load() without allow_pickle=False")
        if name in YAML_UNSAFE:
            self._add(node, "yaml-load", f"{name}()")
        if name in ("yaml.load", "yaml.load_all"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or self._qualified(loader) not in YAML_SAFE_LOADERS:
                self._add(node, "yaml-load", f"{name}() without a safe Loader")
        if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
            self._add(node, "eval-exec", f"{name}()")
        if isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
            receiver = _dotted(node.func.value) or ""
            weights = not receiver.endswith(NO_WEIGHTS)
            if weights and not _is_const(_keyword(node, "use_safetensors"), True):
                self._add(node, "from-pretrained", f"{receiver}.from_pretrained()")
        self.generic_visit(node)


def check_source(text: str, path: str = "<snippet>", *, shell_only: bool = False) -> list[Finding]:
    """Every finding in one module's source."""
    checker = _Checker(path, shell_only)
    checker.visit(ast.parse(text, filename=path))
    return checker.findings


def _files() -> Iterator[tuple[Path, bool]]:
    """(file, shell rule only) for every checked file."""
    for folder in SHELL_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, folder not in SOURCE_DIRS


def _allowed(finding: Finding) -> Allowed | None:
    return next(
        (a for a in ALLOWED
         if (a.path, a.rule, a.where) == (finding.path, finding.rule, finding.where)),
        None,
    )  # fmt: skip


def _all_findings() -> list[Finding]:
    found = []
    for path, shell_only in _files():
        rel = path.relative_to(ROOT).as_posix()
        found += check_source(path.read_text(), rel, shell_only=shell_only)
    return found


def test_source_is_safe() -> None:
    refused = [f for f in _all_findings() if _allowed(f) is None or not f.allowable]
    assert not refused, "unsafe calls (fix them, or list them in ALLOWED with a reason):\n" + (
        "\n".join(str(f) for f in refused)
    )


def test_allow_list_is_explicit_and_used() -> None:
    findings = _all_findings()
    for entry in ALLOWED:
        assert entry.rule in RULES, f"{entry}: unknown rule"
        assert entry.reason.strip(), f"{entry}: give the reason"
        assert any(_allowed(f) == entry for f in findings), f"{entry}: matches nothing; remove it"


def test_the_checked_folders_hold_our_code() -> None:
    # A renamed folder would make the lint pass by checking nothing.
    files = [p.relative_to(ROOT).parts[0] for p, _ in _files()]
    for folder in ("vidrefocus", "pipelines", "samples", "tests"):
        assert files.count(folder) > 0, f"no .py files under {folder}/"


# The lint's own cases: what each rule refuses, and look-alikes it must let through.
@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import subprocess\nsubprocess.run('ls', shell=True)", "shell"),
        ("import subprocess as sp\nsp.Popen(cmd, shell=flag)", "shell"),
        ("from subprocess import check_output\ncheck_output('ls', shell=True)", "shell"),
        ("import os\nos.system('ls')", "shell"),
        ("from os import popen\npopen('ls')", "shell"),
        ("import subprocess\nsubprocess.getoutput('ls')", "shell"),
        ("import pickle", "pickle-import"),
        ("import dill as d", "pickle-import"),
        ("from joblib import load", "pickle-import"),
        ("import marshal", "pickle-import"),
        ("import importlib\nimportlib.import_module('pickle')", "pickle-import"),
        ("import torch\ntorch.load(path)", "unpickle"),
        ("import torch\ntorch.load(path, weights_only=True)", "unpickle"),
        ("from torch import load\nload(path)", "unpickle"),
        ("import torch.hub\ntorch.hub.load_state_dict_from_url(url)", "unpickle"),
        ("import numpy as np\nnp.load(path)", "np-load"),
        ("import numpy as np\nnp.load(path, allow_pickle=True)", "np-load"),
        ("import numpy\nnumpy.load(path, allow_pickle=flag)", "np-load"),
        ("import yaml\nyaml.load(text)", "yaml-load"),
        ("import yaml\nyaml.load(text, Loader=yaml.Loader)", "yaml-load"),
        ("import yaml\nyaml.unsafe_load(text)", "yaml-load"),
        ("import yaml\nyaml.full_load(text)", "yaml-load"),
        ("eval('1 + 1')", "eval-exec"),
        ("exec(code)", "eval-exec"),
        (
            "from transformers import BertModel\nBertModel.from_pretrained(folder)",
            "from-pretrained",
        ),
    ],
)
def test_rule_refuses(source: str, rule: str) -> None:
    assert [f.rule for f in check_source(source)] == [rule]


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\nsubprocess.run(['ls', '-l'], check=True)",
        "import subprocess\nsubprocess.run(['ls'], shell=False)",
        "import numpy as np\nnp.load(path, allow_pickle=False)",
        "import yaml\nyaml.safe_load(text)",
        "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
        "from safetensors.torch import load_file\nload_file(path)",
        "model.eval()",
        "BertTokenizerFast.from_pretrained(folder)\nAutoConfig.from_pretrained(folder)",
        "M.from_pretrained(name, use_safetensors=True)",
        "import ray\nray.get(ref)",
    ],
)
def test_rule_lets_through(source: str) -> None:
    assert check_source(source) == []


def test_tests_are_checked_for_the_shell_only() -> None:
    # tests may unpickle what they made themselves (test_factory checks a factory pickles)
    source = "import pickle\nimport os\nos.system('ls')"
    assert [f.rule for f in check_source(source, shell_only=True)] == ["shell"]


def test_findings_name_file_line_and_function() -> None:
    (finding,) = check_source("def f():\n    eval('1')\n", "pkg/mod.py")
    assert (finding.path, finding.line, finding.where) == ("pkg/mod.py", 2, "f")
    assert str(finding).startswith("pkg/mod.py:2: eval-exec: eval()")


def test_only_a_weights_only_torch_load_can_be_allowed() -> None:
    unsafe, safe = check_source("import torch\ntorch.load(a)\ntorch.load(b, weights_only=True)")
    assert (unsafe.allowable, safe.allowable) == (False, True)
