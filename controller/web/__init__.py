"""The web console: people sign in here, with roles; pages are rendered on the server."""
