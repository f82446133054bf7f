"""spanqa benchmarks: measured on demand, never part of the test suite."""
