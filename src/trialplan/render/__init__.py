"""Rendering: figures, diagrams and documents.  Computes no statistics."""
