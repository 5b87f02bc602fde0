"""How good a translator is: held-out metrics, prompt scoring and model diagnosis, computed from values, not the hub."""
