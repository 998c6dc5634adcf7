"""Converting a trained model for the tower: the command lines of tools/quantize and tools/build_engine. They pick
calibration and check frames from the lab's data (engines/lab/data/calibration.py) and hand them, as frames, to
engines/compile, which knows nothing of data sets."""
