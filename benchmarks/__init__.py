"""Load and throughput scripts with their recorded results (RESULTS.md)."""
