"""The real server under test (gunicorn, production settings) and signing staff in through the real form."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode

from django_otp.oath import hotp

from bench.database import ROOT

HOST = "127.0.0.1"  # the load only ever goes to this machine
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Server:
    """``gunicorn mesoclinic.wsgi`` with DEBUG off and BENCH_FLOOR on, stopped (by its own pid) on exit."""

    def __init__(self, env: dict[str, str], *, port: int, workers: int, log_path: Path) -> None:
        self.env = {
            **os.environ,
            **env,
            "DEBUG": "0",
            "BENCH_FLOOR": "1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "mesoclinic.settings",
        }
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Server:
        self.start()
        return self.wait_ready()

    def start(self) -> None:
        """Start gunicorn without waiting for it (:meth:`wait_ready`): its workers import the application
        while the caller does something else."""
        if self.process is not None:
            return
        with socket.socket() as probe:
            if probe.connect_ex((HOST, self.port)) == 0:
                raise RuntimeError(
                    f"Something already listens on {HOST}:{self.port}; choose another BENCH_PORT."
                )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("", encoding="utf-8")
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "mesoclinic.wsgi",
            f"--bind={HOST}:{self.port}",
            f"--workers={self.workers}",
            "--worker-class=sync",
            "--timeout=120",
            "--graceful-timeout=10",
            "--backlog=2048",
            f"--error-logfile={self.log_path}",
            "--capture-output",
        ]
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT)

    def wait_ready(self) -> Server:
        """Wait until the server answers ``/healthz`` (60 s at most)."""
        self.start()
        process = self.process
        if process is None:  # pragma: no cover - start() sets it
            raise RuntimeError("gunicorn did not start")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{self.log_tail()}")
            try:
                status, _headers, _body = Browser(self.port).request("GET", "/healthz")
            except OSError:
                status = 0
            if status == 200:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within 60 s:\n{self.log_tail()}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_count(self, needle: str) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(encoding="utf-8", errors="replace").count(needle)


@dataclass
class Browser:
    """Just enough of a browser to sign in: cookies, forms, no redirects followed."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, str]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=120)
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
        finally:
            connection.close()
        for raw in response.headers.get_all("Set-Cookie") or []:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, response.headers, text

    def form_token(self, path: str) -> str:
        status, _headers, page = self.request("GET", path)
        found = _CSRF_FIELD.search(page)
        if status != 200 or not found:
            raise RuntimeError(f"GET {path} gave {status} without a form")
        return found.group(1)


_LAST_STEP: dict[str, int] = {}


def totp_code(username: str, key_hex: str) -> str:
    """The current RFC 6238 code (30-second steps, 6 digits, as django_otp's TOTPDevice defaults). A code is
    accepted once: if this account already used the current step, wait for the next one."""
    step = int(time.time()) // 30
    if _LAST_STEP.get(username) == step:
        time.sleep(30 - time.time() % 30 + 0.05)
        step = int(time.time()) // 30
    _LAST_STEP[username] = step
    return f"{hotp(bytes.fromhex(key_hex), step, digits=6):06d}"


def sign_in(port: int, username: str, password: str, totp_key: str | None = None) -> dict[str, str]:
    """Sign in through /accounts/login/ (and /accounts/mfa/ with a TOTP code); return the session cookies."""
    browser = Browser(port)
    token = browser.form_token("/accounts/login/")
    status, headers, _page = browser.request(
        "POST",
        "/accounts/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": token, "next": ""},
    )
    if status != 302:
        raise RuntimeError(f"signing in as {username} failed (HTTP {status}); is the data set generated?")
    if totp_key is not None:
        token = browser.form_token("/accounts/mfa/")
        status, headers, _page = browser.request(
            "POST", "/accounts/mfa/", {"token": totp_code(username, totp_key), "csrfmiddlewaretoken": token}
        )
        if status != 302:
            raise RuntimeError(f"the TOTP code of {username} was refused (HTTP {status})")
    status, headers, _page = browser.request("GET", "/")
    if status != 302 or not str(headers.get("Location", "")).endswith("/patients/"):
        raise RuntimeError(
            f"{username} is signed in but not let through (HTTP {status} {headers.get('Location')})"
        )
    return {"sessionid": browser.cookies["sessionid"], "csrftoken": browser.cookies["csrftoken"]}
