"""Talking to a Hugging Face Hub: typed records, the HTTP client, and the fake Hub."""
