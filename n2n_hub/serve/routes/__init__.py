"""The server's routes, one router per concern; :func:`n2n_hub.serve.app.create_app` assembles them."""
