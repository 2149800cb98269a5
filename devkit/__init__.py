"""Shared development tools: synthetic videos, MP4 boxes, HTTP helpers, paths and environments for local_stack, bench and the tests."""
