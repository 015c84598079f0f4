"""manage.py run_bounce_smtpd: the bounce SMTP receiver (point the return-path domain's MX here)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bounces.intake.receiver import (
    InlineProcessor,
    close_thread_connection,
    queue_received,
    store_received,
)
from bounces.intake.smtpd import GroupWriter, ReceiverConfig, serve, tls_context


class Command(BaseCommand):
    help = ("Receive bounces by SMTP for the return-path domains (BOUNCE_SMTPD_DOMAINS). Every accepted "
            "message is committed to the database before 250 is answered.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.BOUNCE_SMTPD_HOST)
        parser.add_argument("--port", type=int, default=settings.BOUNCE_SMTPD_PORT)
        parser.add_argument("--domain", action="append", dest="domains",
                            help="accept mail for this domain (repeatable; default BOUNCE_SMTPD_DOMAINS)")
        parser.add_argument("--max-size", type=int, default=settings.BOUNCE_SMTPD_MAX_SIZE)
        parser.add_argument("--max-connections", type=int, default=settings.BOUNCE_SMTPD_MAX_CONNECTIONS)
        parser.add_argument("--tls-cert", default=settings.BOUNCE_SMTPD_TLS_CERT,
                            help="certificate chain (PEM) for STARTTLS; with --tls-key")
        parser.add_argument("--tls-key", default=settings.BOUNCE_SMTPD_TLS_KEY)
        parser.add_argument("--process", choices=["celery", "inline", "none"], default=settings.BOUNCE_SMTPD_PROCESS,
                            help="celery: a task per committed batch (default); inline: a thread of this "
                                 "process; none: leave it to the beat sweep")

    def handle(self, *args, **opts):
        domains = frozenset(d.strip().lower().rstrip(".") for d in (opts["domains"] or settings.BOUNCE_SMTPD_DOMAINS)
                            if d.strip())
        if not domains:
            raise CommandError("no return-path domain: set BOUNCE_SMTPD_DOMAINS or pass --domain")
        if opts["max_size"] < 1024 or opts["max_connections"] < 1:
            raise CommandError("--max-size must be at least 1024 and --max-connections at least 1")
        ctx = None
        if opts["tls_cert"] or opts["tls_key"]:
            if not (opts["tls_cert"] and opts["tls_key"]):
                raise CommandError("STARTTLS needs both --tls-cert and --tls-key")
            try:
                ctx = tls_context(opts["tls_cert"], opts["tls_key"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot load the TLS certificate: {exc}") from exc
        config = ReceiverConfig(domains=domains, max_size=opts["max_size"], max_connections=opts["max_connections"],
                                tls_context=ctx)
        inline = InlineProcessor() if opts["process"] == "inline" else None
        after = {"celery": queue_received, "inline": inline.notify if inline else None, "none": None}[opts["process"]]
        writer = GroupWriter(store=store_received, after_commit=after, on_exit=close_thread_connection)
        writer.start()
        if inline:
            inline.start()
        try:
            asyncio.run(self._serve(config, writer, opts["host"], opts["port"]))
        finally:
            writer.stop()
            if inline:
                inline.stop()

    async def _serve(self, config: ReceiverConfig, writer: GroupWriter, host: str, port: int) -> None:
        server = await serve(config, writer, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.stdout.write(f"bounce SMTP receiver on {host}:{port} for {', '.join(sorted(config.domains))}"
                          f"{' (STARTTLS)' if config.tls_context else ''}", ending="\n")
        self.stdout.flush()
        await stop.wait()
        server.close()
        await server.wait_closed()
