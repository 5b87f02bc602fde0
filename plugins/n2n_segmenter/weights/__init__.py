"""Shipped weights of the segmenter plugin (a package so wheels include its .safetensors files)."""
