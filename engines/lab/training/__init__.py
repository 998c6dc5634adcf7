"""Lab: training the polyp model (recipes, augmentation, the training loop, calibration, reports, site adaptation).
Never imported by the live path."""
