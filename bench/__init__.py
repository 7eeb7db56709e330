"""Benchmarks that print ratios against baselines; results in docs/benchmarks-*.md."""
