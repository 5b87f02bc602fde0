"""Shipped vaegan weights (a package so wheels include its .safetensors files)."""
