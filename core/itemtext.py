"""The text that stands for an item in semantic search, built only from what the Hub gives.

The crawler stores a hash of this text with each row and queues an embedding job
only when the hash changes, so unchanged text is never embedded twice.
"""

from __future__ import annotations

import hashlib
import re

from core.hub.records import PaperRecord, RepoRecord

# Tags that say nothing about what a repo is for.
_NOISE_TAGS = {
    "endpoints_compatible", "autotrain_compatible", "text-generation-inference", "has_space",
    "safetensors", "pytorch", "tf", "jax", "region:us", "region:eu", "model-index",
    "inference_endpoints", "deploy:azure", "custom_code", "mergekit",
}
_NOISE_PREFIXES = ("region:", "base_model:", "license:", "arxiv:", "doi:", "deploy:", "size_categories:")
_SPLIT = re.compile(r"[-_./]+")
_RELATION_WORDS = {
    "quantized": "quantization of", "finetune": "finetune of",
    "adapter": "adapter for", "merge": "merge of",
}


def words_of_id(repo_id: str) -> str:
    """`TheBloke/Llama-2-7B-GGUF` → `TheBloke Llama 2 7B GGUF`."""
    return " ".join(part for part in _SPLIT.split(repo_id) if part)


def meaningful_tags(tags: list[str]) -> list[str]:
    kept = []
    for tag in tags:
        if tag in _NOISE_TAGS or tag.startswith(_NOISE_PREFIXES):
            continue
        kept.append(tag.split(":", 1)[1] if tag.startswith(("dataset:", "task_categories:")) else tag)
    return kept


def repo_text(record: RepoRecord) -> str:
    parts = [words_of_id(record.id)]
    if record.author:
        parts.append(f"by {record.author}")
    if record.pipeline_tag:
        parts.append(record.pipeline_tag.replace("-", " "))
    if record.library_name:
        parts.append(record.library_name)
    if record.sdk:
        parts.append(f"{record.sdk} app")
    for base in record.base_models[:3]:
        relation = _RELATION_WORDS.get(base.relation or "", "based on")
        parts.append(f"{relation} {base.repo_id}")
    if record.quant_format:
        parts.append(f"{record.quant_format} quantized")
    tags = meaningful_tags(record.tags)
    if tags:
        parts.append(", ".join(dict.fromkeys(tags))[:400])
    if record.license:
        parts.append(f"license {record.license}")
    if record.description:
        parts.append(record.description[:1000])
    return ". ".join(parts)


def paper_text(record: PaperRecord) -> str:
    parts = [record.title]
    if record.ai_keywords:
        parts.append(", ".join(record.ai_keywords[:20]))
    if record.summary:
        parts.append(record.summary[:1500])
    return ". ".join(parts)


def item_text(record: RepoRecord | PaperRecord) -> str:
    return paper_text(record) if isinstance(record, PaperRecord) else repo_text(record)


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
