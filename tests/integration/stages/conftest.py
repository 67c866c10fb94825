"""Fixtures of the stage tests: see services.py (real redis-server, HTTP and SMTP servers)."""

from .services import home, http_server, redis_url, smtp_server

__all__ = ["home", "http_server", "redis_url", "smtp_server"]
