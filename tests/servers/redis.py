"""A real redis-server as a plain child process on a free loopback port (no persistence)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import free_loopback_port, wait_for_port


def redis_available() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


@dataclass
class RedisServer:
    root: Path
    port: int
    process: subprocess.Popen
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        if redis_available():
            raise RuntimeError(redis_available())
        root = Path(tempfile.mkdtemp(prefix="bouncemgr-redis-"))
        port = free_loopback_port()
        log = open(root / "redis.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(root)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for_port("127.0.0.1", port)
        deadline = time.monotonic() + 10
        while True:  # accepting connections is not the same as answering PING
            out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
            if out.stdout.strip() == "PONG" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return cls(root=root, port=port, process=process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
