"""PROMETHEUS core package."""

import os

# huggingface_hub's telemetry builds its user agent by fetching an "agent
# harness" registry from the endpoint: a blocking call of up to 3 s that a
# daemon did not ask for, made against whatever HF_ENDPOINT names. Off unless
# the user turns it on. Set here because every process imports `core` first.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
