"""Throughput, memory and scale benchmarks of dedup against a real Redis (``make bench``).

Kept out of the test suite on purpose: timings on a shared machine are noisy, so they are
reported as ratios against baselines measured side by side in the same run, never asserted.
Results go to ``bench/results/`` (not versioned); docs/BENCHMARKS.md records a run.
"""
