"""Benchmarks (make bench): long measurements kept out of the timed tests."""
