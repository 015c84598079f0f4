"""The bounce pipeline: runs and locks, matching, decisions, policies, actions and
dispositions. Imports models and the engine; never bounces.rules, the intake or interfaces (views, tasks, admin)."""
