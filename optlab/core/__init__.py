"""The protocol (``GradientTransformation``), composition, tree numerics and validation.

The lowest layer: it imports nothing else of optlab.
"""
