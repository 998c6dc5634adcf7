"""Lab: measuring a model on dataset folders (per-frame scores through the deployed path, metrics).
Never imported by the live path."""
