"""Signal receivers of the intake (connected in BouncesConfig.ready; imports on first use)."""

from __future__ import annotations

from typing import Any


def on_anymail_tracking(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail's `tracking` signal → `webhooks.on_tracking` (stores bounce-like events)."""
    from .webhooks import on_tracking

    on_tracking(sender, event=event, esp_name=esp_name, **kwargs)
