"""``polypwatch site-check``: the deployed path over a hospital's polyp-free footage, before anyone relies on the
detector there (check.py measures and decides, report.py writes report.html, command.py is the command)."""
