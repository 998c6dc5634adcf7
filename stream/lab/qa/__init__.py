"""Replay for QA: recorded procedures through the live pipeline, measured against ground truth."""
