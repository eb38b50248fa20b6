"""Governance plane: the guideline catalog, the city model, assessment, check sheets and reports."""
