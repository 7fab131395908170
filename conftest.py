"""Repository root: makes `core`, `server`, `snapshots` and `bench` importable in tests."""
