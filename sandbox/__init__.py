"""Simulated agency APIs with seeded synthetic data and fault injection (docs/ARCHITECTURE.md).

`sandbox.app.create_app` builds the ASGI app: the registry, pkh, desa, pertanian, kecamatan
(office inbox) and statistik agencies, each under its own prefix and token, and the admin
routes under /_admin. Every agency's records derive from the same synthetic registry, with
conflicts planted at known rates; `sandbox.truth` computes the exact ground truth.
`sandbox.server` runs the app over HTTP; `sandbox.transport` serves it in-process.
Depends on `models` only.
"""
