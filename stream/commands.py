"""Sub-commands beyond ``run`` register themselves here (overlay, replay)."""
EXTRA_PARSERS: list = []
