"""Incidents and alerts: the deliverability guard (issue 14). Sits below the pipeline (which
calls `guard` per batch) and imports only selectors, models and the engine of bounces."""
