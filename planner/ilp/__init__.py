"""The integer program: formulation (the mathematics, in formulation.py's docstring) and solving."""
