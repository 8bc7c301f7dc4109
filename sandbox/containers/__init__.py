"""Adapter over the Docker engine: labelled containers and networks, and cleanup."""
