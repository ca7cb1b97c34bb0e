"""signals: churn risk and purchase signals (きざし) from CRM touchpoint histories."""

from signals.settings import ConfigError, Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Settings",
    "__version__",
    "load_settings",
]
