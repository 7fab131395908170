"""segmentd tests."""
