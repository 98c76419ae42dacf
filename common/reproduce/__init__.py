"""Reproductions: each paper's comparative claim as a recipe (cfg/claims/<name>.yml) that
scripts/reproduce.py trains, scores with the offline protocols and reports (docs/reproductions.md)."""
