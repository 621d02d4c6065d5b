"""The office desk: the hub's own web channel for offices without a system of their own.

Server-rendered pages (FastAPI and Jinja2, in Bahasa Indonesia) where kecamatan, desa,
kabupaten, province and programme staff see the handoffs addressed to their area and answer
them. It sits at the deployments level: it imports models and integrations, and only the
deployments level (`deployments/cli_desk.py`, the demo) imports it.
"""
