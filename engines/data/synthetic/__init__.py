"""Deterministic colonoscopy-like video with per-frame ground truth (tests, demos, benchmarks)."""
from engines.data.synthetic.params import SynthParams
from engines.data.synthetic.renderer import SceneRenderer

__all__ = ["SynthParams", "SceneRenderer"]
