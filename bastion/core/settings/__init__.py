"""The app's settings (PocketBase's settings JSON) and the small key/value store behind them."""
