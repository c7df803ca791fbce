"""Secrets on a server: with a database reached over the network every process refuses to start
without the site's key (processes that each generated their own would reject each other's
sessions), any setting may come from a file (``X_FILE``, a mounted Docker or Kubernetes secret),
and a model's key may too. Each case loads the settings in a fresh interpreter, as a web process
or a worker would at its start; nothing connects to the database named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.lib import paths
from playground.llm.registry import RegistryError, load_models

SHOW = (
    "import django\n"
    "django.setup()\n"
    "from django.conf import settings\n"
    "print(repr(settings.SECRET_KEY))\n"
    "print(repr(settings.DATABASES['default']['NAME']))\n"
)
SERVER = "postgresql://playground:pw@db.example.org:5432/playground"


def _settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGROUND_", "DATABASE_"))}
    keep.update(DJANGO_SETTINGS_MODULE="playground.settings",
                PLAYGROUND_VAR_DIR=str(tmp_path / "var"), **env)  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=paths.REPO_DIR, env=keep, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_database_server_without_the_key_is_refused_with_what_to_do(tmp_path: Path) -> None:
    done = _settings(tmp_path, DATABASE_URL=SERVER)
    assert done.returncode != 0
    assert "Set PLAYGROUND_SECRET_KEY (or PLAYGROUND_SECRET_KEY_FILE" in done.stderr
    assert "secrets.token_urlsafe(50)" in done.stderr
    assert not (tmp_path / "var" / "secret_key").exists()  # no key of its own was made
    # Loopback is a server too: a PgBouncer on this machine serves other machines' workers.
    local = _settings(tmp_path, DATABASE_URL="postgresql://u@127.0.0.1:6432/playground")
    assert "Set PLAYGROUND_SECRET_KEY" in local.stderr


def test_the_embedded_database_keeps_a_generated_key(tmp_path: Path) -> None:
    embedded = paths.embedded_database_url(tmp_path / "var")
    first = _settings(tmp_path, DATABASE_URL=embedded)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "var" / "secret_key").exists()
    assert _settings(tmp_path).stdout.splitlines()[0] == first.stdout.splitlines()[0]  # kept


def test_the_key_and_the_database_url_can_come_from_files(tmp_path: Path) -> None:
    key, url = tmp_path / "key", tmp_path / "database_url"
    key.write_text("k" * 50 + "\n")  # as `echo` or an editor leaves it
    url.write_text(SERVER + "\n")
    done = _settings(tmp_path, PLAYGROUND_SECRET_KEY_FILE=str(key), DATABASE_URL_FILE=str(url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [repr("k" * 50), repr("playground")]
    # The file wins over the variable, as in django-environ.
    both = _settings(tmp_path, PLAYGROUND_SECRET_KEY_FILE=str(key),
                     PLAYGROUND_SECRET_KEY="from-the-environment", DATABASE_URL=SERVER)  # fmt: skip
    assert both.stdout.splitlines()[0] == repr("k" * 50)


def test_a_process_that_signs_nothing_may_run_without_the_key(tmp_path: Path) -> None:
    done = _settings(tmp_path, DATABASE_URL=SERVER, PLAYGROUND_SECRET_KEY_UNUSED="true")
    assert done.returncode == 0, done.stderr


def test_a_model_key_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "vllm_key"
    secret.write_text("sk-from-a-file\n")
    entry = (
        '[{"name": "coder", "base_url": "http://vllm:8000/v1", "model": "coder",'
        ' "api_key_env": "VLLM_API_KEY"}]'
    )
    monkeypatch.setenv("PLAYGROUND_MODELS", entry)
    monkeypatch.delenv("PLAYGROUND_MODELS_FILE", raising=False)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    monkeypatch.setenv("VLLM_API_KEY_FILE", str(secret))
    assert [m.api_key for m in load_models()] == ["sk-from-a-file"]
    monkeypatch.setenv("VLLM_API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(RegistryError, match="Cannot read VLLM_API_KEY_FILE"):
        load_models()
    monkeypatch.delenv("VLLM_API_KEY_FILE")
    with pytest.raises(RegistryError, match="which is not set"):
        load_models()


def test_a_mistyped_metrics_network_stops_the_process_with_what_to_write(tmp_path: Path) -> None:
    done = _settings(tmp_path, PLAYGROUND_METRICS_ALLOW="10.0.0.0/8,10.0.0.300/32")
    assert done.returncode != 0
    assert "PLAYGROUND_METRICS_ALLOW must be a comma list of networks" in done.stderr
    assert _settings(tmp_path, PLAYGROUND_METRICS_ALLOW="10.0.0.0/8, ::1/128").returncode == 0
