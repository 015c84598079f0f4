"""Intake: a notice arrives (mailbox poller, send-time refusal; the SMTP receiver, accounting
files and webhooks join here): store it first, then hand it to the pipeline."""
