"""Management commands of bounces (interfaces): process mailboxes, check one, classify files,
import/export/apply rules."""
