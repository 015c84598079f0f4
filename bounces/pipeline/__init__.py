"""The bounce pipeline: runs and locks, matching, decisions, policies, actions and
dispositions. Imports models, selectors and the engine; never interfaces (views, tasks, admin)."""
