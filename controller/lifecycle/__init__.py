"""Every device's life from purchase to recycling: the asset register, audited state transitions,
disposal evidence, recommendations and embodied carbon.

The rules are pure (``states``, ``evidence``, ``recommend``, ``embodied``); ``service`` and ``queries``
apply them to the database, and ``registercsv`` / ``mdm`` move register rows in and out as CSV.
"""
