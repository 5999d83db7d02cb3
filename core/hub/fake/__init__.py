"""A fake Hugging Face Hub: the real API's wire format over a seeded synthetic corpus.

    hub = FakeHub(models=2000, datasets=1000, spaces=1000, papers=500, seed=0)
    url = await hub.start("127.0.0.1", 0)   # e.g. "http://127.0.0.1:54321"
    hub.create_repo("models", "acme/new-model", tags=["text-generation"])
    await hub.close()

Listings page with `Link: <...>; rel="next"` keyset cursors, details answer
404/307 like the Hub, every response carries `RateLimit` headers, and faults
(5xx, slow, dropped, truncated) can be injected. `POST /_fake/admin/<action>`
exposes the mutation methods over HTTP for demos.
"""

from core.hub.fake.faults import FaultConfig
from core.hub.fake.server import FakeHub

__all__ = ["FakeHub", "FaultConfig"]
