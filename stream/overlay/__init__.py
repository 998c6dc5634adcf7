"""The overlay renderer: a separate process that draws detections on the live feed, never stale, never silent."""
