"""Imports every built-in (paper) method package so that each registers itself."""
