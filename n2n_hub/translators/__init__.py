"""Trained translators: bound to their experts, stored as safetensors files, cached, fetched, published, transferred."""
