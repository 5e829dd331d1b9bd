"""The miniature R1: a tiny R1-style reasoning model built offline on a CPU (testbed and built-in default)."""
