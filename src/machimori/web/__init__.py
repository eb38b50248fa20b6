"""The web server: one FastAPI application for every plane's API."""
