"""Reports for the people who pay for and audit the estate: the bursar report and the audit pack.

periods (which days) → sources (what the register holds) → usage (each device's energy, split) →
bursar / audit (the figures, as dataclasses) → layout (a document) → render (HTML, PDF, CSV, JSON).
"""
