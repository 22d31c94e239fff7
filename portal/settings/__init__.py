"""Settings split by environment: base (shared), dev, test and production.

Every value that differs between deployments comes from an environment variable;
README.md lists them all in one table.
"""
