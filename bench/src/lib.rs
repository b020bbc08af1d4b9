//! Benchmark programs (the suite arrives with the benchmark issue).
