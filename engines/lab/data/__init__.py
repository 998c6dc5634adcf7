"""Lab data: dataset folder layouts (``datasets``), the every-source protocol (``sources``), preprocessed arrays
(``arrays``), deterministic generated colonoscopy video with per-frame truth (``synthetic``) and the ground-truth file
format (``truth``). Used by training, evaluation, replay QA, tests and demos; the live path uses only the
``synthetic://`` source."""
