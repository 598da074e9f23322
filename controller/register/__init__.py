"""The device register: sites, devices, identity, enrollment, ingest, credentials and the change log.

Every other package reads devices through here and never the other way round: ``register`` sits at the
bottom of the controller's dependency graph.
"""
