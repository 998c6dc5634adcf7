"""The still-image file types polypwatch reads: a folder of frames as a live source, dataset folders in the lab."""
IMAGE_EXT = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
