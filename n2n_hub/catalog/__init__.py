"""What is installed and known: the plugin host, the pair registry, and planning a pair from specs alone."""
