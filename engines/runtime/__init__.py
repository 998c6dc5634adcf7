"""The model at run time: its input contract (preprocessing), its output contract (postprocessing into a
``ModelResult``), its metadata, where the shipped model files live, and the ``Detector`` that owns a backend.
Part of the live path: numpy and OpenCV only, no torch, no training or evaluation code."""
