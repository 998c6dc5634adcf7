"""polypwatch engines: the model and everything about it. The lower layer: nothing here imports ``stream``.

Operating room (the live path imports these):
- ``engines.runtime``   the model's input and output contract (preprocessing spec, active area, crop,
                        metadata, postprocessing into boxes): what every backend and the lab agree on
- ``engines.backends``  inference backends behind one protocol (ONNX Runtime, torch, TensorRT) + registry
- ``engines.detector``  the ``Detector``: runtime contracts composed with one backend, walked once per frame
- ``engines.errors``    the exceptions of the whole project
- ``engines.settings``  frozen settings validated at load (runtime configuration, training recipes)
- ``engines.model``     the network definition (torch; used by the torch backend and training)

Lab only (never imported by capture, pipeline, publisher or overlay), each layer importing only those below it:
- ``engines.compile``       ONNX export, TensorRT engine building and INT8 quantisation: takes frames (a folder, a
                            video or a reader), knows nothing of the lab's data sources
- ``engines.lab.data``        dataset folder layouts, the protocol, preprocessed arrays, generated video, truth files,
                            and which of their frames calibrate and check a converted model
- ``engines.lab.convert``     the command lines of tools/quantize and tools/build_engine (lab frames -> compile)
- ``engines.lab.evaluation``  evaluation over datasets, classification metrics, shortcut probes
- ``engines.lab.training``    recipes, training, augmentation, calibration, reports, site adaptation
"""
