"""The dashboard's stored figures: bounces of the last 30 days counted per day by kind, by
reason and by recipient domain, so the landing page sums a few thousand rows instead of
grouping a million bounces (bench/bench_dashboard.py). Written only by console/services.py."""

from __future__ import annotations

from django.db import models


class DashboardCount(models.Model):
    """How many bounces of one day have one kind, reason or recipient domain."""

    class Dimension(models.TextChoices):
        KIND = "kind", "Kind"
        REASON = "reason", "Reason"
        DOMAIN = "domain", "Recipient domain"

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    dimension = models.CharField(max_length=8, choices=Dimension.choices)
    key = models.CharField(max_length=255)
    n = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dimension", "day", "key"], name="dashboardcount_unique"),
        ]
        # the unique constraint's index serves the reads: dimension = X AND day >= start

    def __str__(self) -> str:
        return f"{self.day} {self.dimension} {self.key}: {self.n}"


class DashboardCountState(models.Model):
    """The one row saying up to which bounce id the stored counts go (bounces with a higher id
    are counted live) and when they were last rebuilt."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_bounce_id = models.BigIntegerField(default=0)
    window_start = models.DateField(null=True)
    rebuilt_at = models.DateTimeField(null=True)
    took_ms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"dashboard counts up to bounce #{self.last_bounce_id}"
