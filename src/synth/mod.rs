//! Deterministic synthetic checkpoints for the demo, tests and benchmarks.
