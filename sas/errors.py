"""The error a bad config value raises, below every other module so any of them can raise it.

    raise ConfigError("pool.num_shards=... : at most one shard per image")   # the message names the key
"""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A bad config value; the message names the key."""
