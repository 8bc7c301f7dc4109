"""Regression campaigns: several firmware versions under one scenario, compared.

``model`` holds the results, ``diff`` compares each version with a baseline,
``table``/``junit``/``page`` render them and ``runner`` runs them on a farm
(the embedded farm started when none is running is ``sandbox.cli.farm``: it
runs a ``workers`` agent, which only the CLI layer may import).  Nothing is
imported here so that ``import sandbox.campaign.model`` stays cheap.
"""
