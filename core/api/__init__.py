"""The REST API, the search page and the docs: an aiohttp application (`core.api.app.create_app`).

`core.api.server.run_api` serves it; route modules live in `core.api.routes` (see its docstring
for the contract a new route module follows).
"""
