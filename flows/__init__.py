"""Prefect flows: the nightly screening job and the retrospective audit (DESIGN §6, §7).

Flows stay coarse (ingest, refresh reference data, screen, publish); the Dask work runs inside
the screening task. They call into :mod:`pipeline`, never the other way round.
"""
