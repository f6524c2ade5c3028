"""The package's layers, read from its imports: every module imports only from its own layer or the layers below,
in the order of LAYERS (runtime <- nets <- data <- metrics <- models <- callbacks <- inference <- builders <-
commands), and no command imports another. The interfaces every layer may use (the errors, the package root's
CONF_DIR, protocols.py) import nothing of the package themselves. Every Protocol lives in protocols.py.

Imports are parsed with ``ast`` (inside functions and ``TYPE_CHECKING`` blocks too), nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from parti_exp import CONF_DIR

PACKAGE = CONF_DIR.parent / "parti_exp"

# Lowest first; a module's layer is the longest prefix of its name listed here.
CONTRACTS = ("parti_exp", "parti_exp.errors", "parti_exp.protocols")
LAYERS = (
    CONTRACTS,
    ("parti_exp.runtime",),
    ("parti_exp.nets",),
    ("parti_exp.data",),
    ("parti_exp.metrics",),
    ("parti_exp.models",),
    ("parti_exp.callbacks",),
    ("parti_exp.inference",),
    ("parti_exp.builders",),
    ("parti_exp.train", "parti_exp.sample", "parti_exp.evaluate", "parti_exp.edit", "parti_exp.translate",
     "parti_exp.shards", "parti_exp.project", "parti_exp.export", "parti_exp.demo"),
    # Writers of the datasets' on-disk formats for tests and benchmarks: nothing of the package uses them.
    ("parti_exp.testing",),
)
COMMANDS = LAYERS[-2]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The modules of the package that ``path`` imports (``from a.b import c`` counts ``a.b.c`` when that is a
    module, else ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                      for a in node.names}
    return {name for name in found if name == "parti_exp" or name.startswith("parti_exp.")}


def layer_of(module: str) -> int | None:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    # The root package only holds CONF_DIR: "parti_exp" matches every module, so only an exact match counts.
    if best is not None and LAYERS[best[0]] is CONTRACTS and best[1] == len("parti_exp") and module != "parti_exp":
        return None
    return None if best is None else best[0]


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every import that runs upward, crosses between two commands, or leaves a contract depending on the package."""
    found = []
    for module, imported in sorted(imports.items()):
        own = layer_of(module)
        for target in sorted(imported):
            theirs = layer_of(target)
            if module in CONTRACTS and module != "parti_exp" and target != module:
                found.append(f"{module} imports {target}: an interface every layer uses imports nothing of the package")
            elif own is not None and theirs is not None and theirs > own:
                found.append(f"{module} ({LAYERS[own][0]}) imports {target}, a layer above ({LAYERS[theirs][0]})")
            elif module in COMMANDS and target in COMMANDS and target != module:
                found.append(f"{module} imports {target}: a command imports no other command")
    return found


@pytest.fixture(scope="module")
def package_imports() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imports_of(path, set(modules)) for name, path in modules.items()}


def test_every_module_is_in_a_layer(package_imports):
    unplaced = [module for module in package_imports if layer_of(module) is None]
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"
    assert len(package_imports) > 100  # the whole package was read


def test_no_module_imports_upward_and_no_command_imports_another(package_imports):
    found = violations(package_imports)
    assert not found, "\n".join(found)


def test_the_check_finds_what_it_looks_for():
    assert violations({
        "parti_exp.runtime.checkpoints": {"parti_exp.models.gan.module"},  # upward
        "parti_exp.edit": {"parti_exp.sample", "parti_exp.inference.prompts"},  # another command
        "parti_exp.protocols": {"parti_exp.runtime.images"},  # a contract depending on the package
        "parti_exp.models.vqgan": {"parti_exp.models.gan.module", "parti_exp.nets.vqgan", "parti_exp.errors"},
    }) == [
        "parti_exp.edit imports parti_exp.sample: a command imports no other command",
        "parti_exp.protocols imports parti_exp.runtime.images: an interface every layer uses imports nothing "
        "of the package",
        "parti_exp.runtime.checkpoints (parti_exp.runtime) imports parti_exp.models.gan.module, a layer above "
        "(parti_exp.models)",
    ]


def test_every_protocol_is_in_protocols_py():
    elsewhere = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            bases = [ast.unparse(base) for base in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and any(base.endswith("Protocol") for base in bases):
                if name != "parti_exp.protocols":
                    elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []
