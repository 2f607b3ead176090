"""Benchmarks: `hearth bench lab`, `hearth bench gateway` (see docs/benchmarks.md)."""
