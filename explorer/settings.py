"""Where the application keeps its settings (QSettings)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

ORGANIZATION = "DiffusionExplorer"
APPLICATION = "Diffusion Explorer"

# Tests and screenshots point this at a throw-away .ini file so they never
# read or change the user's own settings.
SETTINGS_FILE_VARIABLE = "DIFFUSION_EXPLORER_SETTINGS"


def open_settings() -> QSettings:
    """The user's settings, or the .ini file named by ``DIFFUSION_EXPLORER_SETTINGS``."""
    path = os.environ.get(SETTINGS_FILE_VARIABLE)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_str_list(settings: QSettings, key: str) -> list[str]:
    """A list of strings from settings, tolerant of the scalar an .ini file returns for one item."""
    value = settings.value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(item) for item in value]
