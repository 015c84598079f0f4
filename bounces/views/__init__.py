"""The remaining staff pages of bounces (detail, runs, unexplained queue, deliverability) and the
mailbox admin views. Interfaces: fetch, call one selector or service, render."""
