"""Benchmarks (tools/bench): latency and throughput of polypwatch and of a baseline loop, side by side."""
