"""Every ``polypwatch`` command, in one place: its name, its group, one line of help, and where its options and
its handler live. Modules are imported only for the command that runs, so ``polypwatch run`` never imports the lab.

A command's module provides ``arguments(parser)`` (adds its options) and ``handler(args) -> int`` under the names
given here; handlers raise library exceptions, and only ``stream.cli.main`` turns them into exit codes.
``tools/NAME`` (NAME with '_' for '-') runs the same command.
"""
from __future__ import annotations

from dataclasses import dataclass

AT_THE_TOWER, QA, LAB = "at the tower", "quality assurance", "the lab"
GROUPS = (AT_THE_TOWER, QA, LAB)


@dataclass(frozen=True)
class Command:
    name: str
    group: str
    help: str
    module: str
    arguments: str = "add_arguments"
    handler: str = "run"


_TOWER = "stream.tower_commands"
COMMANDS = (
    Command("run", AT_THE_TOWER, "the live pipeline: capture -> detect -> alert -> publish", _TOWER,
            "run_arguments", "cmd_run"),
    Command("overlay", AT_THE_TOWER, "draw the pipeline's detections on the live feed (separate process)", _TOWER,
            "overlay_arguments", "cmd_overlay"),
    Command("web", AT_THE_TOWER, "browser view: the live feed with boxes and state, image/clip checks, QA reports",
            _TOWER, "web_arguments", "cmd_web"),
    Command("keys", AT_THE_TOWER, "make a CURVE key pair (NAME.key public, NAME.key_secret secret)", _TOWER,
            "keys_arguments", "cmd_keys"),
    Command("replay", QA, "run recorded procedures through the detector and measure it", "stream.lab.qa.command"),
    Command("site-check", QA, "how the detector will behave at a hospital, from its own polyp-free footage",
            "stream.lab.site.command"),
    Command("operating-point", QA, "threshold and alert filter chosen on validation sequences (--apply: into a model)",
            "engines.lab.evaluation.operating_point_cli"),
    Command("bench", QA, "latency and throughput against a baseline; --gpu-report: the GPU table",
            "stream.lab.bench.cli"),
    Command("soak", QA, "a whole procedure's processes (record, metrics, overlay, web, a browser) for minutes: drift",
            "stream.lab.bench.soak"),
    Command("gpu-kit", QA, "bundle what a bare GPU machine lacks for the GPU report (.gpukit/run.sh)",
            "stream.lab.bench.gpu_kit"),
    Command("synth-video", LAB, "a generated colonoscopy-like clip with its ground truth", "engines.synthetic.cli"),
    Command("train", LAB, "train a recipe (configs/train/*.yaml), choose the threshold, export ONNX",
            "engines.lab.training.cli"),
    Command("crossval", LAB, "leave-one-source-out: each source left out in turn", "engines.lab.training.crossval"),
    Command("site-kit", LAB, "the commissioning kit a model ships (evidence from its training data)",
            "engines.lab.site.build_kit"),
    Command("commission-protocol", LAB, "the pre-registered commissioning protocol on the shared sources",
            "engines.lab.site.protocol"),
    Command("site-truth-sim", LAB, "the site's-truth loop simulated on the shared sources (rounds of reviewed procedures)",
            "engines.lab.site.truth_simulation"),
    Command("adapt", LAB, "commission the model at one hospital's tower from its polyp-free footage", "stream.lab.site.adapt_command"),
    Command("evaluate", LAB, "AUROC, sensitivity/specificity, boxes, shortcut checks per source; INT8 parity",
            "engines.lab.evaluation.cli"),
    Command("grid-verdict", LAB, "a pre-registered grid's fold conditions, so far", "engines.lab.evaluation.grid_verdict"),
    Command("style-probe", LAB, "does colour (texture) alone give a source's labels away?",
            "engines.lab.evaluation.style_probe"),
    Command("model-latency", LAB, "CPU latency per backbone and input size", "engines.lab.evaluation.latency"),
    Command("quantize", LAB, "the INT8 twin of a model (ONNX Runtime, or --for tensorrt)", "engines.lab.convert.quantize_cli"),
    Command("build-engine", LAB, "compile a model into a TensorRT 10/11 engine for this GPU", "engines.lab.convert.build_engine_cli"),
)
BY_NAME = {c.name: c for c in COMMANDS}
