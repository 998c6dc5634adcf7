"""Lab: training the polyp model (data to arrays, augmentation, the training loop, ONNX export, reports).
Never imported by the live path."""
