"""Outputs of the assessment: JSON, HTML report, check sheets (XLSX, CSV, Markdown) and reading them back."""
