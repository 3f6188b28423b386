"""The training engine: one step (`step.py`) and the loops around it (`loop.py`)."""
