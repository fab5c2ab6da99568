"""Presets: one table of defaults per concern, their checks, and preset files."""
