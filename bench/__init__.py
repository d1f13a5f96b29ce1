"""Benchmark harness: each module measures side by side in one run and prints ratios."""
