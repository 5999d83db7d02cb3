"""PROMETHEUS core package."""
