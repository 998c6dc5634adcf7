"""The browser view (``polypwatch web``): the live feed with the detector's boxes and state for viewers in other
rooms, a page to check one image or clip with the model, and the QA reports. A viewer never slows the pipeline."""
