"""Seeded daily papers: ~23-25 per weekday, none at weekends, with readable titles and abstracts.

Papers are few (hundreds to tens of thousands), so each is one plain record;
`add_paper` simply inserts another. The three wire shapes (daily item,
`/api/papers` item, detail) are renderings of that record.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.hub.fake.vocab import (
    ADJECTIVES,
    FIRST_NAMES,
    HANDLE_PARTS,
    KNOWN_AUTHORS,
    LAST_NAMES,
    PAPER_CLAIMS,
    PAPER_METHODS,
    TOPICS,
)
from core.hub.fake.wire import iso, parse_iso

DAY = 86_400
SUBMITTERS = ("akhaliq", "taesiri", "AdinaY", "nielsr", "kramp", "yuqianzhang", "julien-c", "merve")
ORGS = tuple(name for name, *_ in KNOWN_AUTHORS[10:24])


def _hex(rng: np.random.Generator, ts: int) -> str:
    return f"{ts:08x}{int(rng.integers(0, 2**63)):016x}"


def user_overview(name: str, oid: str, *, pro: bool, followers: int) -> dict[str, Any]:
    return {"_id": oid, "avatarUrl": f"/avatars/{oid[:12]}.svg", "fullname": name.replace("-", " ").title(),
            "name": name, "type": "user", "isPro": pro, "isHf": False, "isHfAdmin": False, "isMod": False,
            "followerCount": followers}


@dataclass(frozen=True)
class DailyQuery:
    date: str | None = None  # YYYY-MM-DD of the daily listing
    week: str | None = None  # YYYY-Www
    month: str | None = None  # YYYY-MM
    submitter: str | None = None
    sort: str = "publishedAt"


class PaperCorpus:
    def __init__(self, n: int, *, seed: int, anchor: int) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.base_ids: list[str] = []
        self._version = 0
        self._sorted: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._generate(n, np.random.default_rng([seed, 4]), anchor)

    # --- generation -----------------------------------------------------------------------------

    def _generate(self, n: int, rng: np.random.Generator, anchor: int) -> None:
        day = anchor - DAY  # the latest full daily listing is yesterday's
        sequence: dict[str, int] = {}
        made = 0
        while made < n:
            if time.gmtime(day).tm_wday < 5:
                for _ in range(min(int(rng.integers(23, 26)), n - made)):
                    self._add_generated(rng, day, sequence)
                    made += 1
            day -= DAY

    def _add_generated(self, rng: np.random.Generator, day: int, sequence: dict[str, int]) -> None:
        published = day - int(rng.integers(0, 3)) * DAY + int(rng.integers(0, DAY))
        published = min(published, day + 3600)
        month = time.strftime("%y%m", time.gmtime(published))
        sequence[month] = sequence.get(month, int(rng.integers(100, 900))) + int(rng.integers(1, 40))
        arxiv_id = f"{month}.{sequence[month]:05d}"
        topic = TOPICS[int(rng.integers(0, len(TOPICS)))]
        method = PAPER_METHODS[int(rng.integers(0, len(PAPER_METHODS)))]
        claim = PAPER_CLAIMS[int(rng.integers(0, len(PAPER_CLAIMS)))]
        adj = ADJECTIVES[int(rng.integers(0, len(ADJECTIVES)))]
        acronym = (HANDLE_PARTS[int(rng.integers(0, len(HANDLE_PARTS)))].capitalize()
                   + topic.word.capitalize())
        task_title = topic.task[0].upper() + topic.task[1:]
        title = (
            f"{acronym}: {method} for Models That {task_title.title()}",
            f"Scaling {method} to {topic.phrase.title()}",
            f"Can Language Models Really {topic.task}? An Empirical Study of {method}",
            f"Towards {adj.capitalize()} {topic.word.capitalize()} Models via {method}",
            f"{acronym}: Learning to {topic.task} from {topic.phrase}",
        )[int(rng.integers(0, 5))]
        summary = (
            f"Models that {topic.task} remain brittle when the data they see in deployment differs from "
            f"their training data. We introduce {acronym}, an approach based on {method.lower()} that is "
            f"trained on {topic.phrase}. Unlike prior work, {acronym} needs no additional human labels and "
            f"{claim}. Experiments on {int(rng.integers(3, 12))} benchmarks show consistent gains over strong "
            f"baselines, and ablations identify which components matter most. We release code, data and "
            f"model checkpoints to support future research on {topic.word} models."
        )
        authors = []
        for _ in range(int(rng.integers(2, 9))):
            name = (f"{FIRST_NAMES[int(rng.integers(0, len(FIRST_NAMES)))]} "
                    f"{LAST_NAMES[int(rng.integers(0, len(LAST_NAMES)))]}")
            authors.append({"_id": _hex(rng, day), "name": name, "hidden": False})
        submitter = SUBMITTERS[int(rng.integers(0, len(SUBMITTERS)))]
        upvotes = int(np.floor(rng.lognormal(2.0, 1.2)))
        record: dict[str, Any] = {
            "id": arxiv_id, "title": title, "summary": summary, "authors": authors, "publishedAt": published,
            "submittedOnDailyAt": day + int(rng.integers(0, 12 * 3600)),
            "submittedBy": user_overview(submitter, hashlib.md5(submitter.encode()).hexdigest()[:24], pro=True,
                                         followers=int(rng.integers(10, 5000))),
            "upvotes": upvotes, "numComments": int(rng.integers(0, 6)), "discussionId": _hex(rng, day),
            "ai_summary": f"{acronym} uses {method.lower()} to {topic.task} and {claim}.",
            "ai_keywords": [method, topic.word, topic.phrase.split(" ")[-1], acronym],
        }
        if rng.random() < 0.4:
            record["githubRepo"] = f"https://github.com/{acronym.lower()}/{acronym}"
        if rng.random() < 0.2:
            record["projectPage"] = f"https://{acronym.lower()}.github.io"
        if rng.random() < 0.2:
            org = ORGS[int(rng.integers(0, len(ORGS)))]
            record["organization"] = {"_id": _hex(rng, day), "name": org, "fullname": org}
        self.records[arxiv_id] = record
        self.base_ids.append(arxiv_id)

    # --- mutation -------------------------------------------------------------------------------

    def add(self, arxiv_id: str, *, title: str, summary: str, authors: list[str], published_at: int,
            fields: dict[str, Any]) -> dict[str, Any]:
        rng = np.random.default_rng([len(self.records), published_at])
        now = int(time.time())
        record: dict[str, Any] = {
            "id": arxiv_id, "title": title, "summary": summary, "publishedAt": published_at,
            "authors": [{"_id": _hex(rng, now), "name": a, "hidden": False} for a in authors],
            "submittedOnDailyAt": now, "submittedBy": user_overview("akhaliq", "60f1abe7544c2adfd699860c",
                                                                    pro=True, followers=9000),
            "upvotes": 0, "numComments": 0, "discussionId": _hex(rng, now), "ai_keywords": [],
        }
        for key, value in fields.items():
            record[key] = value
        for key in ("publishedAt", "submittedOnDailyAt"):
            if isinstance(record[key], str):
                record[key] = parse_iso(record[key])
        self.records[arxiv_id] = record
        self._version += 1
        return record

    # --- queries --------------------------------------------------------------------------------

    def get(self, arxiv_id: str) -> dict[str, Any] | None:
        return self.records.get(arxiv_id)

    def ids(self) -> set[str]:
        return set(self.records)

    def ordered(self, by: str) -> list[dict[str, Any]]:
        """Records newest first by `daily` (submittedOnDailyAt), `published` or `trending` (upvotes)."""
        cached = self._sorted.get(by)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        records = sorted(self.records.values(), key=lambda r: r["id"])
        if by == "trending":
            records.sort(key=lambda r: -r["upvotes"])
        elif by == "published":
            records.sort(key=lambda r: -r["publishedAt"])
        else:
            records.sort(key=lambda r: -r["submittedOnDailyAt"])
        self._sorted[by] = (self._version, records)
        return records

    def daily(self, query: DailyQuery) -> list[dict[str, Any]]:
        records = self.ordered("trending" if query.sort == "trending" else "daily")
        if query.date:
            records = [r for r in records if time.strftime("%Y-%m-%d", time.gmtime(r["submittedOnDailyAt"]))
                       == query.date]
        if query.week:
            records = [r for r in records if time.strftime("%G-W%V", time.gmtime(r["submittedOnDailyAt"]))
                       == query.week]
        if query.month:
            records = [r for r in records if time.strftime("%Y-%m", time.gmtime(r["submittedOnDailyAt"]))
                       == query.month]
        if query.submitter:
            records = [r for r in records if r["submittedBy"]["name"] == query.submitter]
        return records

    def after(self, cursor: tuple[int, str] | None, limit: int) -> list[dict[str, Any]]:
        """Keyset page of `/api/papers`: publishedAt descending, then id ascending."""
        records = self.ordered("published")
        if cursor is None:
            return records[:limit]
        published, arxiv_id = cursor
        lo, hi = 0, len(records)
        while lo < hi:  # first record strictly after the cursor in (−publishedAt, id) order
            mid = (lo + hi) // 2
            r = records[mid]
            if (-r["publishedAt"], r["id"]) > (-published, arxiv_id):
                hi = mid
            else:
                lo = mid + 1
        return records[lo:lo + limit]

    # --- renderings -----------------------------------------------------------------------------

    @staticmethod
    def inner(record: dict[str, Any]) -> dict[str, Any]:
        paper: dict[str, Any] = {
            "id": record["id"], "authors": record["authors"], "publishedAt": iso(record["publishedAt"]),
            "submittedOnDailyAt": iso(record["submittedOnDailyAt"]), "title": record["title"],
            "submittedOnDailyBy": {**record["submittedBy"], "user": record["submittedBy"]["name"]},
            "summary": record["summary"], "upvotes": record["upvotes"], "discussionId": record["discussionId"],
        }
        for key in ("projectPage", "githubRepo", "ai_summary", "ai_keywords"):
            if key in record:
                paper[key] = record[key]
        return paper

    @classmethod
    def daily_item(cls, record: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "paper": cls.inner(record), "publishedAt": iso(record["publishedAt"]), "title": record["title"],
            "summary": record["summary"],
            "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{record['id']}.png",
            "numComments": record["numComments"], "submittedBy": record["submittedBy"],
        }
        if "organization" in record:
            item["organization"] = record["organization"]
        item["isAuthorParticipating"] = False
        return item

    @staticmethod
    def list_item(record: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": record["id"], "title": record["title"], "upvotes": record["upvotes"],
            "publishedAt": iso(record["publishedAt"]),
            "thumbnailUrl": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{record['id']}.png",
            "authors": record["authors"], "summary": record["summary"],
        }
        for key in ("projectPage", "githubRepo", "ai_summary", "organization"):
            if key in record:
                item[key] = record[key]
        return item

    @classmethod
    def detail(cls, record: dict[str, Any], linked: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        body = cls.inner(record)
        body["linkedModels"] = linked.get("models", [])
        body["numTotalModels"] = len(body["linkedModels"])
        body["linkedDatasets"] = linked.get("datasets", [])
        body["numTotalDatasets"] = len(body["linkedDatasets"])
        body["linkedSpaces"] = linked.get("spaces", [])
        body["numTotalSpaces"] = len(body["linkedSpaces"])
        return body
