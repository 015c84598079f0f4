"""The bounces app: bounce intake, the pipeline, operator rules, the engine (parsing/) and the
mailbox connectors (mailboxes/). The layers and allowed imports: docs/architecture.md."""
