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

# The house as an order of package prefixes, lowest first; a module belongs to the layer of its longest matching
# prefix and imports only its own layer and those below (docs/ARCHITECTURE.md). Everything up to LAB_FROM is the
# operating room; the lab starts there, so the live path can import no lab code, lazily or not.
LAYERS = (("engines", "engines.errors", "engines.settings"),
          ("engines.truth", "engines.runtime", "engines.model", "engines.synthetic"),   # contracts every backend shares
          ("engines.backends",),
          ("engines.detector",),                                          # runtime contracts + one backend
          ("stream",),                                                    # capture, pipeline, wire, overlay, web, CLI
          ("engines.compile",),                                           # the lab, from here up: takes frames
          ("engines.lab", "engines.lab.data"),
          ("engines.lab.convert",),                                       # lab frames -> compile (two CLIs)
          ("engines.lab.evaluation",),
          ("engines.lab.training",),
          ("engines.lab.site",),                                          # commissioning a new hospital
          ("stream.lab",))
LAB_FROM = 5
TORCH_FREE = ("stream.cli", "stream.pipeline", "stream.overlay.app", "engines.detector",
              "engines.backends.onnxruntime_backend", "engines.lab.evaluation.evaluate", "stream.lab.qa.replay",
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
    matches = [(len(p), i) for i, packages in enumerate(LAYERS) for p in packages if _under(module, p)]
    if not matches:
        raise KeyError(f"{module}: in no layer of LAYERS")
    return max(matches)[1]                      # the longest prefix: stream.lab.qa is the lab, stream.web is not


def upward_imports(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, what it imports) for every import of a higher layer."""
    return sorted((m, d) for m, deps in g.items() for d in deps if layer_of(d) > layer_of(m))


def live_lab_imports(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(operating-room module, lab module) for every import of the lab by the operating room."""
    return sorted((m, d) for m, deps in g.items() if layer_of(m) < LAB_FROM for d in deps if layer_of(d) >= LAB_FROM)


def test_dependencies_run_one_way():
    assert upward_imports(graph()) == []


def test_the_live_path_imports_no_lab_module_directly():
    assert live_lab_imports(graph()) == []


@pytest.mark.parametrize("module, planted, rule", [
    ("engines.lab.evaluation.latency", "engines.lab.training.train", upward_imports),     # evaluation -> training
    ("engines.detector", "engines.lab.data.datasets", upward_imports),        # operating room -> lab
    ("engines.compile.calibration", "engines.lab.data.sources", upward_imports),      # compile -> lab data
    ("engines.runtime.preprocess", "engines.backends.registry", upward_imports),     # contract -> backends
    ("engines.backends.onnxruntime_backend", "engines.detector", upward_imports),    # backend -> composition
    ("engines.backends.registry", "stream.config", upward_imports),
    ("stream.sources", "engines.lab.data.datasets", live_lab_imports),                # live path -> lab data
    ("stream.web.server", "engines.lab.evaluation.metrics", live_lab_imports),
    ("stream.pipeline", "engines.lab.training.calibrate", live_lab_imports),
    ("stream.tower_commands", "stream.lab.qa.replay", live_lab_imports),             # even a lazy import
    ("engines.synthetic.renderer", "engines.lab.data.tower", live_lab_imports),
])
def test_each_rule_catches_a_planted_violation(module, planted, rule):
    g = graph()
    assert module in g and planted in g
    assert rule(g) == []
    g[module] = g[module] | {planted}
    assert rule(g) == [(module, planted)]


def test_a_planted_import_in_a_source_file_is_seen(tmp_path):
    bad = tmp_path / "planted.py"
    bad.write_text("import numpy\n\ndef f():\n    from engines.lab.training.train import train\n    from engines.lab.data "
                   "import sources\n")
    assert imports_of(bad, all_modules()) == {"engines.lab.training.train", "engines.lab.data.sources"}


def test_the_checks_see_what_they_must():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    modules = all_modules()
    assert "engines.detector" in modules and "stream.pipeline" in modules
    assert "engines.detector" in graph()["stream.pipeline"]


def test_no_import_circles():
    assert cycles(graph()) == []


def test_engines_never_imports_stream():
    bad = sorted((m, d) for m, deps in graph().items() if m.startswith("engines")
                 for d in deps if d.split(".")[0] == "stream")
    assert bad == []


def test_every_module_is_in_a_layer_and_both_rooms_hold_code():
    layers = {m: layer_of(m) for m in all_modules()}
    assert any(v < LAB_FROM for v in layers.values()) and any(v >= LAB_FROM for v in layers.values())
    assert layers["stream.lab.qa.replay"] >= LAB_FROM and layers["stream.web.server"] < LAB_FROM


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
    assert loose == ["__init__.py", "detector.py", "errors.py", "model.py", "settings.py", "truth.py"]
    for pkg in ("runtime", "backends", "synthetic", "compile", "lab", "lab/data", "lab/convert", "lab/training",
                "lab/evaluation"):
        assert ast.get_docstring(ast.parse((ROOT / "engines" / pkg / "__init__.py").read_text())), pkg


def test_no_file_over_250_lines_without_a_reason():
    """A file that needs a table of contents is two files; the few longer ones say why in their docstring."""
    long = []
    for p in [*(ROOT / "engines").rglob("*.py"), *(ROOT / "stream").rglob("*.py")]:
        n = len(p.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(p.read_text())) or ""
        if n > 250 and "Longer than 250 lines" not in doc:
            long.append(f"{p.relative_to(ROOT)}: {n} lines")
    assert long == []


def test_shipped_models_are_where_the_runtime_looks():
    from engines.runtime.model_files import DEFAULT_MODEL, MODELS_DIR, resolve_model_path
    assert MODELS_DIR == ROOT / "engines" / "models"
    assert resolve_model_path("") == DEFAULT_MODEL and DEFAULT_MODEL.is_file()
    assert DEFAULT_MODEL.with_suffix(".pt").is_file()
    from engines.runtime.model_files import HISTORY_MODELS
    assert all(not (MODELS_DIR / f"{m}.onnx").exists() for m in HISTORY_MODELS)   # superseded: in git history only


def test_the_checkout_keeps_its_size_budget():
    """What may ship under engines/models/ and how large the tracked tree may grow (docs/ARCHITECTURE.md): the whole
    checkout travels to a GPU machine in at most 64 MiB, with room left for the GPU kit."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    files = [ROOT / f for f in out.stdout.decode().split("\0") if f]
    total = sum(p.stat().st_size for p in files if p.is_file())
    assert total <= 40 << 20, f"tracked tree {total / 2**20:.1f} MiB > 40 MiB budget"
    models = sorted(p.name for p in files if p.parent == ROOT / "engines" / "models")
    assert models == ["polypwatch-lite0-v3.int8-trt.onnx", "polypwatch-lite0-v3.int8.onnx", "polypwatch-lite0-v3.onnx",
                      "polypwatch-lite0-v3.pt", "polypwatch-lite0-v3.sitekit.npz"]
