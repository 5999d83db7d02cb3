"""The pool of authors shared by every kind: the well-known names, then a long tail of handles.

Authors are drawn per kind with fixed shares for the known names (mradermacher
owns ~1% of all models, Nymbo many Spaces) and a power law over the long tail,
so some ordinary users own thousands of repos and most own one or two.
"""

from __future__ import annotations

import numpy as np

from core.hub.fake.vocab import FIRST_NAMES, HANDLE_PARTS, KNOWN_AUTHORS, LAST_NAMES

_KIND_COLUMN = {"models": 1, "datasets": 2, "spaces": 3}
_ASCII = str.maketrans({"ü": "u", "ö": "o", "ä": "a", "é": "e"})


class AuthorPool:
    def __init__(self, size: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 1])
        self.known = len(KNOWN_AUTHORS)
        names = [entry[0] for entry in KNOWN_AUTHORS]
        seen = {n.lower() for n in names}
        firsts = rng.integers(0, len(FIRST_NAMES), size).tolist()
        lasts = rng.integers(0, len(LAST_NAMES), size).tolist()
        parts_a = rng.integers(0, len(HANDLE_PARTS), size).tolist()
        parts_b = rng.integers(0, len(HANDLE_PARTS), size).tolist()
        patterns = rng.integers(0, 7, size).tolist()
        digits = rng.integers(1, 2000, size).tolist()
        for j in range(size):
            first = FIRST_NAMES[firsts[j]].translate(_ASCII)
            last = LAST_NAMES[lasts[j]].translate(_ASCII)
            pattern = patterns[j]
            if pattern == 0:
                name = f"{first.lower()}{last.lower()}"
            elif pattern == 1:
                name = f"{first}-{last}"
            elif pattern == 2:
                name = f"{HANDLE_PARTS[parts_a[j]]}{HANDLE_PARTS[parts_b[j]]}"
            elif pattern == 3:
                name = f"{HANDLE_PARTS[parts_a[j]]}-{HANDLE_PARTS[parts_b[j]]}{digits[j]}"
            elif pattern == 4:
                name = f"{first.lower()}{digits[j]}"
            elif pattern == 5:
                name = f"{last}{HANDLE_PARTS[parts_a[j]].capitalize()}"
            else:
                name = f"{first[0].lower()}{last.lower()}{digits[j] % 100}"
            while name.lower() in seen:
                name = f"{name}{digits[j] % 10}"
                digits[j] //= 3
                digits[j] += 7
            seen.add(name.lower())
            names.append(name)
        self.names: list[str] = names
        self.index: dict[str, int] = {n: i for i, n in enumerate(names)}
        # Long-tail weights: a power law with a soft head, so the top ordinary user owns ~0.3% of a kind.
        ranks = np.arange(size, dtype=np.float64)
        weights = 1.0 / (ranks + 30.0)
        self._tail_cdf = np.cumsum(weights) / weights.sum()

    def __len__(self) -> int:
        return len(self.names)

    def draw(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """Author index for each of n items of a kind."""
        column = _KIND_COLUMN[kind]
        out = np.empty(n, dtype=np.int32)
        u = rng.random(n)
        tail = rng.random(n)
        out[:] = self.known + np.minimum(np.searchsorted(self._tail_cdf, tail), len(self._tail_cdf) - 1)
        edge = 0.0
        for a, entry in enumerate(KNOWN_AUTHORS):
            share = entry[column]
            if share <= 0:
                continue
            out[(u >= edge) & (u < edge + share)] = a
            edge += share
        if n >= 200:  # small corpora still get a repo of each known author active in this kind
            present = np.bincount(out[out < self.known], minlength=self.known)
            for a, entry in enumerate(KNOWN_AUTHORS):
                if entry[column] > 0 and present[a] == 0:
                    out[int(rng.integers(0, n))] = a
        return out
