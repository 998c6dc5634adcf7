"""``polypwatch adapt``: commission a site model from polyp-free recordings (engines/lab/site/adapt_cli.py) or from the
site's procedure records (``--records DIR``): their footage outside reviewed polyps and marks as the site's frames,
reviewed false alarms among them as hard negatives, reviewed polyps as positives with their place, each procedure
held out in turn (stream/lab/site/records.py, docs/COMMISSIONING.md)."""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path


def add_arguments(ap) -> None:
    from engines.lab.site import adapt_cli
    src = adapt_cli.add_arguments(ap)
    src.add_argument("--records", metavar="DIR",
                     help="procedure records (record.dir, with record.footage and reviews in polypwatch web): "
                          "commission from the site's own footage and reviewed polyps")
    ap.add_argument("--mark-seconds", type=float, default=3.0,
                    help="with --records: frames this close to a mark are not polyp-free (default 3, record.mark_seconds)")


def run(args) -> int:
    from engines.lab.site import adapt_cli
    if not args.records:
        return adapt_cli.run(args)
    from stream.lab.site.records import records_footage
    with tempfile.TemporaryDirectory(prefix="polypwatch-records-") as work:
        used = records_footage(Path(args.records), Path(work), args.mark_seconds)
        if len(used.folders) < 2:
            from engines.errors import ConfigError
            raise ConfigError(f"--records: {len(used.folders)} procedure(s) with polyp-free footage, at least 2 are "
                              f"needed ({2 - len(used.folders)} more): each is held out in turn to judge the others' "
                              f"site model; nothing was written")
        print(f"--records: {len(used.folders)} procedure(s) of footage, {len(used.positives)} reviewed polyp frame(s)")
        return adapt_cli.run(args, [str(f) for f in used.folders], used.positives, statistics.median(used.fps))
