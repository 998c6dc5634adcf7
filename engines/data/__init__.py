"""Lab data: dataset folder layouts (``datasets``), deterministic generated colonoscopy video with per-frame
truth (``synthetic``) and the ground-truth file format (``truth``). Used by training, evaluation, replay QA,
tests and demos; the live path uses only the ``synthetic://`` source and the list of image extensions."""
