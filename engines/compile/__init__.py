"""Lab: turning a trained network into deployable files: ONNX export checked against torch, TensorRT engines built
ahead of time, INT8 calibration frames.
The sidecar that the runtime checks lives with the backends (``engines.backends.engine_sidecar``)."""
