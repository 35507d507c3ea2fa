"""One node process: config, HTTP server, API handlers, validation, views, metrics, the console."""
