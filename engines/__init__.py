"""polypwatch engines: the model and everything about it. The lower layer: nothing here imports ``stream``.

Operating room (the live path imports these):
- ``engines.runtime``   the model's input and output contract (preprocessing spec, active area, crop,
                        metadata, postprocessing into boxes) and the ``Detector`` that walks a frame through it
- ``engines.backends``  inference backends behind one protocol (ONNX Runtime, torch, TensorRT) + registry
- ``engines.errors``    the exceptions of the whole project
- ``engines.settings``  frozen settings validated at load (runtime configuration, training recipes)
- ``engines.model``     the network definition (torch; used by the torch backend and training)

Lab only (never imported by capture, pipeline, publisher or overlay), each layer importing only those below it:
- ``engines.lab.data``        dataset folder layouts, the protocol, preprocessed arrays, generated video, truth files
- ``engines.compile``       ONNX export, TensorRT engine building and INT8 calibration
- ``engines.lab.evaluation``  evaluation over datasets, classification metrics, shortcut probes
- ``engines.lab.training``    recipes, training, augmentation, calibration, reports, site adaptation
"""
