"""The model at run time: its input contract (preprocessing), its output contract (postprocessing into a
``ModelResult``), its metadata, where the shipped model files live: what every backend and the lab agree on. It imports no backend
(the ``Detector`` that composes these contracts with a backend is ``engines/detector.py``, one floor up).
Part of the live path: numpy and OpenCV only, no torch, no training or evaluation code."""
