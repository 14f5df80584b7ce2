"""The aiohttp app (adapter): routes, middlewares, app-lifetime resources."""
