"""Deterministic colonoscopy-like video with per-frame ground truth (tests, demos, benchmarks)."""
from engines.synthetic.params import SynthParams
from engines.synthetic.renderer import SceneRenderer

__all__ = ["SynthParams", "SceneRenderer"]
