"""polypwatch engines: the model, its metadata, and the inference backends behind one small protocol."""
