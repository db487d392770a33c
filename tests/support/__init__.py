"""Helpers the test modules share (fixtures stay in conftest.py files)."""
