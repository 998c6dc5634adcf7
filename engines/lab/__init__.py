"""The lab: data sets and the protocol (data/), training (training/), evaluation (evaluation/). Nothing here runs
beside the tower: the operating room's code (engines/runtime, engines/backends, stream outside stream/lab) never
imports it."""
