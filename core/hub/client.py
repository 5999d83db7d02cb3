"""The one place PROMETHEUS talks HTTP to a Hub: paging, pacing and retries.

huggingface_hub's list helpers follow `Link` headers internally and never expose
the cursor, so a crawler that must resume mid-listing pages by itself. The
library still provides what it does well: the endpoint convention (`HF_ENDPOINT`),
the token and the user agent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
import orjson
import structlog
from huggingface_hub.utils import build_hf_headers

from core.config import Config
from core.hub.ratelimit import Pacer, backoff_delay, parse_ratelimit, retry_after_seconds
from core.kinds import Kind

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT_LIBRARY = ("prometheus", "0.1.0")


class HubError(Exception):
    """A request failed for good (after retries, or with a status that retrying cannot fix)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Page:
    url: str
    body: bytes  # the JSON array as the Hub sent it
    next_url: str | None
    documents: list[bytes]  # each item's JSON as the Hub sent it, stored without serializing it again

    @cached_property
    def items(self) -> list[Any]:
        """The items as dicts (the crawler parses most pages straight from `body` instead)."""
        return orjson.loads(self.body)


# Finds where each item of a page starts and ends, without building anything (a tenth of a full parse).
_ITEM_SPANS = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    timeout: float = 60.0


def parse_link_next(header: str | None) -> str | None:
    """The `rel="next"` target of a `Link` header, if any."""
    if not header:
        return None
    for part in header.split(","):
        url_part, _, params = part.partition(";")
        url_part = url_part.strip()
        rel = params.replace(" ", "")
        if ('rel="next"' in rel or "rel=next" in rel) and url_part.startswith("<") and url_part.endswith(">"):
            return url_part[1:-1]
    return None


def list_path(kind: Kind) -> str:
    return f"/api/{kind.plural}"


class HubClient:
    @classmethod
    def from_config(cls, config: Config, endpoint: str | None = None) -> HubClient:
        """The client every part of PROMETHEUS uses: endpoint, token and retry policy from the config."""
        return cls(endpoint or config.hub_endpoint, config.hub_token,
                   retry=RetryPolicy(max_attempts=config.hub_max_attempts,
                                     backoff_base=config.hub_retry_base_seconds))

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.pacer = pacer or Pacer()
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._headers = build_hf_headers(
            token=token or False, library_name=USER_AGENT_LIBRARY[0], library_version=USER_AGENT_LIBRARY[1]
        )
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.rate_limited = 0
        self.retries = 0

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.retry.timeout),
                connector=aiohttp.TCPConnector(limit=8),
            )
        return self._session

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        query = urlencode(list(params))
        return f"{self.endpoint}{path}" + (f"?{query}" if query else "")

    def list_url(self, kind: Kind, *, sort: str | None = None, limit: int = 1000,
                 expand: Sequence[str] = (), extra: Sequence[tuple[str, str]] = ()) -> str:
        params: list[tuple[str, str]] = []
        if sort:
            params.append(("sort", sort))
            params.append(("direction", "-1"))
        params.append(("limit", str(limit)))
        params.extend(("expand[]", field) for field in expand)
        params.extend(extra)
        return self.url(list_path(kind), params)

    async def _request(self, url: str, decode: Callable[[bytes], Any] = orjson.loads,
                       ) -> tuple[int, dict[str, str], Any, bytes]:
        """One GET with retries. Returns (status, headers, `decode(body)` or None, body).

        A body `decode` cannot read is taken for a truncated one and retried; one it reads
        but in an unexpected shape (`msgspec.ValidationError`) decodes to None.
        """
        last_error = ""
        for attempt in range(self.retry.max_attempts):
            sent = await self.pacer.acquire()
            self.requests += 1
            info = None
            try:
                async with self._get_session().get(url, allow_redirects=False) as response:
                    headers = dict(response.headers)
                    info = parse_ratelimit(headers)
                    body = await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                self.pacer.release(None, sent)
                last_error = f"{type(exc).__name__}: {exc}"
                await self._backoff(attempt, url, last_error)
                continue
            except asyncio.CancelledError:  # the slot is free again: nobody waits for this answer
                self.pacer.release(None, sent)
                raise
            self.pacer.release(info, sent)
            if status == 429:
                self.rate_limited += 1
                wait = retry_after_seconds(status, headers)
                if info is not None:
                    self.pacer.exhausted_until(info)
                last_error = "429 Too Many Requests"
                log.warning("hub_rate_limited", url=url, wait=wait)
                await asyncio.sleep(wait if wait is not None else backoff_delay(
                    attempt, base=self.retry.backoff_base, cap=self.retry.backoff_cap, rng=self._rng))
                continue
            if status in RETRY_STATUSES:
                last_error = f"HTTP {status}"
                await self._backoff(attempt, url, last_error)
                continue
            if status >= 300:
                return status, headers, None, body
            try:
                return status, headers, decode(body), body
            except msgspec.ValidationError:
                return status, headers, None, body
            except (orjson.JSONDecodeError, msgspec.DecodeError) as exc:
                # A truncated body: the connection died mid-response.
                last_error = f"invalid JSON ({len(body)} bytes): {exc}"
                await self._backoff(attempt, url, last_error)
        raise HubError(f"GET {url} failed after {self.retry.max_attempts} attempts: {last_error}")

    async def _backoff(self, attempt: int, url: str, reason: str) -> None:
        self.retries += 1
        delay = backoff_delay(attempt, base=self.retry.backoff_base, cap=self.retry.backoff_cap, rng=self._rng)
        log.warning("hub_retry", url=url, attempt=attempt + 1, reason=reason, delay=round(delay, 3))
        await asyncio.sleep(delay)

    async def get_page(self, url: str) -> Page:
        status, headers, spans, body = await self._request(url, _ITEM_SPANS.decode)
        if status != 200:
            raise HubError(f"GET {url} answered {status}", status)
        if spans is None:
            raise HubError(f"GET {url} did not return a JSON array")
        documents = [bytes(item) for item in spans]
        return Page(url=url, body=body, next_url=parse_link_next(headers.get("Link")), documents=documents)

    async def repo_info(self, kind: Kind, repo_id: str) -> dict[str, Any] | None:
        """Detail of one repo or paper; follows renames (307); None when it does not exist."""
        path = f"/api/papers/{quote(repo_id)}" if kind is Kind.PAPER else f"/api/{kind.plural}/{repo_id}"
        for _ in range(5):
            status, headers, data, _ = await self._request(self.url(path))
            if status in (301, 302, 307, 308) and headers.get("Location"):
                location = headers["Location"]
                path = location if location.startswith("/") else "/" + location.split("/", 3)[-1]
                continue
            if status == 404:
                return None
            if status != 200 or not isinstance(data, dict):
                raise HubError(f"GET {path} answered {status}", status)
            return data
        raise HubError(f"too many redirects for {kind.value} {repo_id}")
