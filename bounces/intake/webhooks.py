"""ESP webhooks into the intake: anymail's `tracking` signal (sent by its views once a request is
authenticated and normalised, see bounces/views/intake.py) becomes stored notices keyed by the
provider's event id, so a replayed webhook is a no-op. Imports the intake's notices and models."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings

from ..models import RawMessage
from .esp import _plain, anymail_notice, event_key
from .notices import Notice, receive_notices


def on_tracking(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail's `tracking` signal: store bounce-like events as notices (queued for processing)."""
    notice = anymail_notice(event, esp_name, tracking_header=settings.BOUNCE_TRACKING_HEADER)
    if notice is None:
        return
    key = event_key(esp_name, event)
    if key is None:  # no provider id: the payload itself identifies the event
        payload = json.dumps(_plain(getattr(event, "esp_event", None)), sort_keys=True, default=str)
        key = f"{esp_name}:sha256:{hashlib.sha256(payload.encode()).hexdigest()}:{notice.recipient.lower()}"
    receive_notices(notices=[Notice.structured(source=RawMessage.Source.WEBHOOK, key="esp:" + key, notice=notice)],
                    process="queue")
