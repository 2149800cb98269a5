"""Seeded mutations of videos (mutations.py) and a harness that runs the worker on each (harness.py)."""
