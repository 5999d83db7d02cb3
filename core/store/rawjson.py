"""How an item's raw Hub JSON is stored: zlib with a preset dictionary of the Hub's vocabulary.

A model's list JSON is ~600 bytes and mostly the same keys and tags over and
over; a preset dictionary lets each small document compress against that shared
vocabulary (about 40% of its size) instead of against nothing. The first byte is
a format version so the dictionary can change without rewriting old rows.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

_FORMAT_V1 = 1
# Most frequent first is least useful: zlib prefers matches near the end of the dictionary.
_DICTIONARY_V1 = (
    b'"siblings":[{"rfilename":".gitattributes"},{"rfilename":"README.md"},{"rfilename":"config.json"}'
    b'"cardData":{"title":"","emoji":"","sdk":"gradio","short_description":"","license":"mit"}'
    b'"safetensors":{"parameters":{"BF16":,"F32":,"F16":},"total":}'
    b'"arxiv:","dataset:","base_model:quantized:","base_model:finetune:","base_model:adapter:","base_model:merge:",'
    b'"task_categories:","size_categories:","language:","format:","modality:","library:","doi:",'
    b'"license:apache-2.0","license:mit","license:other","license:llama3","license:cc-by-4.0",'
    b'"text-generation","text-classification","image-classification","feature-extraction",'
    b'"sentence-similarity","text-to-image","automatic-speech-recognition","fill-mask",'
    b'"transformers","safetensors","pytorch","gguf","peft","diffusers","sentence-transformers",'
    b'"conversational","text-generation-inference","autotrain_compatible","endpoints_compatible",'
    b'"region:us"],"trendingScore":0,"disabled":false,"gated":false,"private":false,'
    b'"library_name":"transformers","pipeline_tag":"text-generation","description":"",'
    b'"downloadsAllTime":0,"downloads":0,"likes":0,"lastModified":"2025-01-01T00:00:00.000Z",'
    b'"createdAt":"2024-01-01T00:00:00.000Z","sha":"","author":"","tags":["'
    b'{"_id":"","id":"'
)


# A 4 KiB window holds the dictionary and any list item; copying a primed
# compressor is cheaper than loading the dictionary for every row.
_WBITS = 12
_PRIMED_COMPRESSOR = zlib.compressobj(2, zlib.DEFLATED, _WBITS, 4, zdict=_DICTIONARY_V1)
_PRIMED_DECOMPRESSOR = zlib.decompressobj(_WBITS, zdict=_DICTIONARY_V1)
_PREFIX_V1 = bytes([_FORMAT_V1])


def encode_raw(obj: dict[str, Any]) -> bytes:
    compressor = _PRIMED_COMPRESSOR.copy()
    return _PREFIX_V1 + compressor.compress(orjson.dumps(obj)) + compressor.flush()


def decode_raw(blob: bytes | str) -> dict[str, Any]:
    """The stored JSON as a dict (plain JSON text is accepted too)."""
    if isinstance(blob, str):
        return orjson.loads(blob)
    if blob[:1] == _PREFIX_V1:
        decompressor = _PRIMED_DECOMPRESSOR.copy()
        return orjson.loads(decompressor.decompress(blob[1:]) + decompressor.flush())
    return orjson.loads(blob)
