"""The house rules, checked on the source: one direction between the packages, no import circles, a live path
that imports no lab code, torch-free modules that stay torch-free. Each rule is also shown to catch a planted
violation, so a rule that stopped seeing anything would fail here."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stream", "engines")

# the live path: what runs beside the endoscopy tower (capture, pipeline, publisher, overlay)
LIVE_ROOTS = ("stream.pipeline", "stream.publisher", "stream.reader", "stream.sources", "stream.overlay.app",
              "stream.cli", "stream.web.server")
LAB = ("engines.training", "engines.evaluation", "engines.build", "stream.qa", "stream.bench", "stream.batched")
# imported when the operator asks for it, never on the live path's way: the CLI's replay command
LAZY_LAB_ENTRY = {("stream.tower_commands", f"stream.qa.{m}") for m in ("inputs", "replay", "study_run", "runners", "study", "output_dir")}
LAZY_LAB_ENTRY |= {("stream.tower_commands", "stream.batched")}     # `run` of every frame of a file with batch_size > 1
# lowest first: a package imports its own layer and the layers below, never one above (docs/ARCHITECTURE.md)
LAYERS = (("engines.errors", "engines.settings"),
          ("engines.runtime", "engines.backends", "engines.model"),      # the operating room
          ("engines.data",),                                             # the lab, from here up
          ("engines.build",),
          ("engines.evaluation",),
          ("engines.training",),
          ("stream",))
# what the live path (stream/ outside qa/ and bench/) may import of the lab: the synthetic:// video source only
LIVE_PACKAGES_EXCLUDED = ("stream.qa", "stream.bench")
LIVE_MAY_NOT = ("engines.training", "engines.evaluation", "engines.data", "engines.build")
LIVE_MAY_FROM_DATA = ("engines.data.synthetic",)
TORCH_FREE = ("stream.cli", "stream.pipeline", "stream.overlay.app", "engines.runtime.detector",
              "engines.backends.onnxruntime_backend", "engines.evaluation.evaluate", "stream.qa.replay",
              "stream.web.server")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            # ``from pkg import submodule`` depends on the submodule; a name defined in pkg on pkg itself
            names = subs + ([node.module] if any(s not in modules for s in subs) else [])
        else:
            continue
        out |= {n for n in names if n in modules}
    return out


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {m: imports_of(p, modules) - {m} for m, p in modules.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> int:
    for i, packages in enumerate(LAYERS):
        if any(_under(module, p) for p in packages):
            return i
    raise KeyError(f"{module}: in no layer of LAYERS")


def upward_imports(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, what it imports) for every import of a higher layer."""
    return sorted((m, d) for m, deps in g.items() for d in deps if layer_of(d) > layer_of(m))


def live_lab_imports(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(live module, lab module) for every direct import of lab code by stream/ outside qa/ and bench/."""
    def lab(d: str) -> bool:
        return any(_under(d, p) for p in LIVE_MAY_NOT) and not any(_under(d, p) for p in LIVE_MAY_FROM_DATA)
    return sorted((m, d) for m, deps in g.items() if _under(m, "stream")
                  and not any(_under(m, p) for p in LIVE_PACKAGES_EXCLUDED) for d in deps if lab(d))


def test_dependencies_run_one_way():
    assert upward_imports(graph()) == []


def test_the_live_path_imports_no_lab_module_directly():
    assert live_lab_imports(graph()) == []


@pytest.mark.parametrize("module, planted, rule", [
    ("engines.evaluation.latency", "engines.training.train", upward_imports),     # evaluation -> training
    ("engines.runtime.detector", "engines.data.datasets", upward_imports),        # operating room -> lab
    ("engines.data.sources", "engines.build.export", upward_imports),
    ("engines.backends.registry", "stream.config", upward_imports),
    ("stream.sources", "engines.data.datasets", live_lab_imports),                # live path -> lab data
    ("stream.web.server", "engines.evaluation.metrics", live_lab_imports),
    ("stream.pipeline", "engines.training.calibrate", live_lab_imports),
])
def test_each_rule_catches_a_planted_violation(module, planted, rule):
    g = graph()
    assert module in g and planted in g
    assert rule(g) == []
    g[module] = g[module] | {planted}
    assert rule(g) == [(module, planted)]


def test_a_planted_import_in_a_source_file_is_seen(tmp_path):
    bad = tmp_path / "planted.py"
    bad.write_text("import numpy\n\ndef f():\n    from engines.training.train import train\n    from engines.data "
                   "import sources\n")
    assert imports_of(bad, all_modules()) == {"engines.training.train", "engines.data.sources"}


def test_the_checks_see_what_they_must():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    modules = all_modules()
    assert "engines.runtime.detector" in modules and "stream.pipeline" in modules
    assert "engines.runtime.detector" in graph()["stream.pipeline"]


def test_no_import_circles():
    assert cycles(graph()) == []


def test_engines_never_imports_stream():
    bad = sorted((m, d) for m, deps in graph().items() if m.startswith("engines")
                 for d in deps if d.split(".")[0] == "stream")
    assert bad == []


@pytest.mark.parametrize("root", LIVE_ROOTS)
def test_live_path_imports_no_lab_code(root):
    g = graph()
    seen, todo, via = {root}, [root], {}
    while todo:
        m = todo.pop()
        for d in g.get(m, ()):
            if (m, d) in LAZY_LAB_ENTRY or d in seen:
                continue
            seen.add(d)
            via[d] = m
            todo.append(d)
    lab = sorted(m for m in seen if m.startswith(LAB))
    chains = []
    for m in lab:
        chain = [m]
        while chain[-1] in via:
            chain.append(via[chain[-1]])
        chains.append(" <- ".join(chain))
    assert chains == []


def test_torch_free_modules_stay_torch_free():
    code = ("import importlib, sys\n"
            f"for m in {TORCH_FREE!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_engines_folders_have_roles():
    loose = sorted(p.name for p in (ROOT / "engines").glob("*.py"))
    assert loose == ["__init__.py", "errors.py", "model.py", "settings.py"]
    for pkg in ("runtime", "backends", "build", "data", "training", "evaluation"):
        assert ast.get_docstring(ast.parse((ROOT / "engines" / pkg / "__init__.py").read_text())), pkg


def test_shipped_models_are_where_the_runtime_looks():
    from engines.runtime.model_files import DEFAULT_MODEL, MODELS_DIR, resolve_model_path
    assert MODELS_DIR == ROOT / "engines" / "models"
    assert resolve_model_path("") == DEFAULT_MODEL and DEFAULT_MODEL.is_file()
    assert DEFAULT_MODEL.with_suffix(".pt").is_file()
    from engines.runtime.model_files import PREVIOUS_MODELS
    assert all(p.is_file() and p.with_suffix(".pt").is_file() for p in PREVIOUS_MODELS)
