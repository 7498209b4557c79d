"""The benchmark (run.py) and the load driver (load.py) it shares with the end-to-end load test."""
