"""A Redis primary, its replica and three sentinels on loopback ports (Debian's `redis-server` and
`redis-sentinel`), for tests that kill the primary and expect the site to follow the failover."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from tests.stack import free_port

MASTER = "playground"
# How long the sentinels wait before calling a silent primary down, and before a failover that
# stalls is tried again: short, so a test sees the whole failover in a few seconds.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelGroup:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def _server(self, name: str, port: int, *extra: str) -> None:
        where = self.base / name
        where.mkdir(parents=True, exist_ok=True)
        self.procs[name] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(where), "--protected-mode", "no", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def start(self, timeout: float = 30) -> None:
        self._server("primary", self.primary_port)
        self._server("replica", self.replica_port, "--replicaof", "127.0.0.1",
                     str(self.primary_port))  # fmt: skip
        for index, port in enumerate(self.sentinel_ports):
            conf = self.base / f"sentinel-{index}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.base}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self.procs[f"sentinel-{index}"] = subprocess.Popen(
                ["redis-sentinel", str(conf)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._ready():
            assert time.monotonic() < deadline, "the sentinels never saw the replica and each other"
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            replica = redis.Redis(port=self.replica_port, socket_timeout=1)
            if replica.info("replication").get("master_link_status") != "up":
                return False
            for port in self.sentinel_ports:
                sentinel = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                fields = sentinel.sentinel_master(MASTER)
                if int(fields["num-slaves"]) < 1 or int(fields["num-other-sentinels"]) < 2:
                    return False
        except redis.RedisError:
            return False
        return True

    def primary(self) -> int:
        """The port of the primary the sentinels name now."""
        sentinel = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1, decode_responses=True)
        _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return int(port)

    def kill_primary(self) -> None:
        """SIGKILL to the primary (no chance to save or hand over anything)."""
        os.killpg(self.procs["primary"].pid, signal.SIGKILL)
        self.procs["primary"].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(10)


@contextmanager
def sentinel_group(base: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(base)
    try:
        group.start()
        yield group
    finally:
        group.stop()
