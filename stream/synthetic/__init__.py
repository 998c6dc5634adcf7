"""Deterministic colonoscopy-like video with per-frame ground truth (tests, demos, benchmarks)."""
from stream.synthetic.params import SynthParams
from stream.synthetic.renderer import SceneRenderer

__all__ = ["SynthParams", "SceneRenderer"]
