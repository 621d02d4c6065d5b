"""Simulated agency APIs with seeded synthetic data and fault injection (DESIGN.md §2).

`sandbox.app.create_app` builds the ASGI app (registry agency under /registry, admin under
/_admin); `sandbox.server` runs it over HTTP; `sandbox.transport` serves it in-process.
Depends on `models` only.
"""
