"""Thin entry points that run on compute nodes (called by submitit)."""
