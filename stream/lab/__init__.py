"""The lab side of stream: replay QA and studies (qa/), benchmarks and soak runs (bench/). Reached from the command
line only through stream/commands.py; the live path never imports it."""
