"""The contracts: what an expert, a bridge, a dataset, a recipe and a translator kind must offer.

Plugins meet the hub here (through ``n2n_hub`` and ``n2n_hub.kit``, which re-export it).
"""
