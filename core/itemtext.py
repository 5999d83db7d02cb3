"""The text that stands for an item in semantic search, built only from what the Hub gives.

The crawler stores a hash of what this text is built from (`source_hash`) with each row
and queues an embedding job only when it changes; the embedder hashes the text itself
(`text_hash`) and skips items whose stored vector already has it, so unchanged text is
never embedded twice.
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


# Model cards are not in the list API, so a model's text is mostly its id and tags;
# a plain-words gloss of its task gives the embedding the meaning users search by.
_TASK_GLOSS = {
    "text-generation": "language model that generates text, chat and completions",
    "text2text-generation": "sequence to sequence model that rewrites, translates or summarises text",
    "text-to-image": "generates images and pictures from text prompts",
    "image-to-image": "edits and transforms images",
    "text-to-video": "generates videos from text prompts",
    "text-to-speech": "speech synthesis, turns text into spoken audio",
    "text-to-audio": "generates audio and music from text",
    "automatic-speech-recognition": "speech recognition, transcribes spoken audio into text",
    "audio-classification": "classifies sounds and audio clips",
    "image-classification": "classifies images into categories",
    "object-detection": "detects and locates objects in images",
    "image-segmentation": "segments images into regions",
    "image-to-text": "describes images in words, image captioning",
    "image-text-to-text": "vision language model that answers questions about images",
    "visual-question-answering": "answers questions about images",
    "feature-extraction": "embedding model that turns text into vectors",
    "sentence-similarity": "sentence embeddings for semantic similarity and retrieval",
    "text-classification": "classifies text, sentiment analysis",
    "token-classification": "tags words in text, named entity recognition",
    "question-answering": "extractive question answering over a passage",
    "summarization": "summarises long documents",
    "translation": "machine translation between languages",
    "fill-mask": "masked language model for filling in missing words",
    "zero-shot-classification": "classifies text into labels without training examples",
    "reinforcement-learning": "reinforcement learning agent",
    "depth-estimation": "estimates depth from images",
    "tabular-classification": "classifies rows of tabular data",
    "time-series-forecasting": "forecasts time series",
}


def words_of_id(repo_id: str) -> str:
    """`TheBloke/Llama-2-7B-GGUF` → `TheBloke Llama 2 7B GGUF`."""
    return _SPLIT.sub(" ", repo_id).strip(" ")


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
        gloss = _TASK_GLOSS.get(record.pipeline_tag)
        task = record.pipeline_tag.replace("-", " ")
        parts.append(f"{task}: {gloss}" if gloss else task)
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


def source_hash(record: RepoRecord | PaperRecord) -> str:
    """A hash of every field `item_text` reads: equal hashes, equal texts.

    The crawler needs one for each new or changed item (a million on a first mirror);
    this costs a quarter of building the text to hash it.
    """
    if isinstance(record, PaperRecord):
        parts = [record.title, *record.ai_keywords, "\x1e", record.summary or ""]
    else:
        parts = [record.id, record.author or "", record.pipeline_tag or "", record.library_name or "",
                 record.sdk or "", record.license or "", record.description or "", *record.tags]
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).hexdigest()
