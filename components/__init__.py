"""Pulumi components of the mlscore program: one component per file, all fed by Settings."""
