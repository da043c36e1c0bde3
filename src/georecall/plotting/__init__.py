"""Figures drawn from saved experiment payloads only; torch-free (importing it never imports torch)."""
