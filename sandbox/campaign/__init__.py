"""Regression campaigns: several firmware versions under one scenario, compared.

``model`` holds the results, ``diff`` compares each version with a baseline,
``table``/``junit``/``page`` render them, ``runner`` runs them on a farm and
``farm`` starts an embedded one when none is running.  Nothing is imported
here so that ``import sandbox.campaign.model`` stays cheap.
"""
