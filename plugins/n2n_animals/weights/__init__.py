"""Shipped weights of the animals plugin (a package so wheels include its .safetensors files)."""
