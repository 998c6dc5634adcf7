"""Lab: compiling a trained ONNX model into a TensorRT engine ahead of time (build, INT8 calibration).
The sidecar that the runtime checks lives with the backends (``engines.backends.engine_sidecar``)."""
