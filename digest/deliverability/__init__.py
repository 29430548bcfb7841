"""Preflight of the sending domain: what receivers check before they accept a digest (README, "Deliverability check").

lookup.py asks DNS; spf.py, dmarc.py and records.py each judge records; report.py gathers
the inputs from the settings and runs them per From domain; findings.py is what they return.
"""
