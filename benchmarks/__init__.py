"""Reference implementations Tonle's benchmarks compare against; never used in production."""
