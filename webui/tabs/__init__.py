"""One module per tab of the web app, each exposing ``render(ctx)``."""
