"""polypwatch streaming side: capture -> preprocess -> infer -> alert -> publish, overlay, replay."""
