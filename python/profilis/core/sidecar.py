"""The ``profilis-reader`` sidecar of the classic API: one reader per ring,
started and supervised by the application's processes.

Every process that builds an :class:`~profilis.core.async_collector.AsyncCollector`
(every worker of a pre-forking server) runs a supervisor thread that waits
for an exclusive ``flock`` on ``RING.reader.lock``. The process that gets it
starts ``profilis-reader`` and hands the locked file to it, so the lock is
held while the starter or its reader lives:

- exactly one reader drains the ring, however many processes ask for one;
- the starter restarts the reader if it exits while the starter runs;
- if the starter exits, the reader goes on alone (still holding the lock);
  if both are gone, the next waiting process takes the lock and starts a
  new reader;
- the reader runs with ``--exit-when-unused``: once no process has had the
  ring open for :data:`EXIT_GRACE` (the application is gone), it drains
  what is left, flushes its files and exits. Nothing keeps running.

The reader serves its dashboard and API on a private port of 127.0.0.1
(chosen by the system) under the blueprint's prefix, and writes where in
``RING.reader.json``; :mod:`profilis.flask.ui` proxies it into the Flask
app. Its settings come from the exporters, the collector, the
:class:`~profilis.core.stats.StatsStore` and the blueprint of the process
holding the lock; the reader starts once they have been still for
:data:`SETTLE_SECS` and is restarted (draining first, nothing lost) when
they change after that. Its log lines go to ``RING.reader.log`` and from
there to the ``profilis`` logger. A process that exits before any reader
started (a short script) starts one at exit to drain what it wrote.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Dict, List, Optional

log = logging.getLogger("profilis")

#: How long the reader waits, once no process has the ring open, before it
#: drains and exits (``--exit-when-unused``).
EXIT_GRACE = "2s"
#: Settings still for this long start the reader.
SETTLE_SECS = 0.2
_RESTART_MAX_SECS = 30.0


def reader_binary() -> str:
    """``PROFILIS_READER``; else the ``profilis-reader`` installed next to
    this python (the wheel puts it there); else the one on ``PATH``."""
    explicit = os.environ.get("PROFILIS_READER")
    if explicit:
        return explicit
    beside = os.path.join(os.path.dirname(sys.executable), "profilis-reader")
    if os.path.exists(beside):
        return beside
    found = shutil.which("profilis-reader")
    if found:
        return found
    raise RuntimeError(
        "profilis-reader not found: install the profilis wheel (it ships the reader) "
        "or set PROFILIS_READER to its path"
    )


class Sidecar:
    """The process's view of its ring's reader: settings, the supervisor
    thread and, in the process holding the lock, the reader itself."""

    def __init__(self) -> None:
        self.ring: Optional[str] = None
        self._sections: Dict[str, List[str]] = {}
        self._token: Optional[str] = None
        self._css: Optional[str] = None
        self.ui_prefix = "/_profilis"
        self._cond = threading.Condition()
        self._generation = 0
        self._changed_at = 0.0
        self._thread: Optional[threading.Thread] = None
        self._lock_fd: Optional[int] = None
        self._holding = False
        self._exiting = False
        self._spawn_lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self.reader_pid: Optional[int] = None
        #: Ring capacity the collector asked for (0: no collector).
        self.queue_max = 0

    # -- settings ---------------------------------------------------------

    def configure(self, section: str, args: List[str], **extra: Any) -> None:
        """Sets one group of reader options (``exporters``, ``collector``,
        ``stats``, ``ui``); ``token`` and ``css`` with ``ui``."""
        with self._cond:
            self._sections[section] = list(args)
            if section == "ui":
                self._token = extra.get("token")
                self._css = extra.get("css")
                self.ui_prefix = extra.get("prefix", self.ui_prefix)
            self._generation += 1
            self._changed_at = time.monotonic()
            self._cond.notify_all()

    @property
    def token(self) -> Optional[str]:
        return self._token

    def command(self) -> List[str]:
        """The reader's command line for the current settings."""
        assert self.ring is not None
        args = [reader_binary(), self.ring, "--wait", "--exit-when-unused", EXIT_GRACE]
        args += ["--ui-addr", "127.0.0.1:0"]
        for section in ("exporters", "collector", "stats", "ui"):
            args += self._sections.get(section, [])
        if self._css is not None:
            args += ["--ui-css", self.css_path]
        return args

    # -- files next to the ring -------------------------------------------

    @property
    def lock_path(self) -> str:
        return f"{self.ring}.reader.lock"

    @property
    def state_path(self) -> str:
        return f"{self.ring}.reader.json"

    @property
    def log_path(self) -> str:
        return f"{self.ring}.reader.log"

    @property
    def css_path(self) -> str:
        return f"{self.ring}.reader.css"

    def state(self) -> Optional[Dict[str, Any]]:
        """What the supervising process wrote about the running reader
        (``reader_pid``, ``ui_url``), or None when no reader announced
        itself or it is gone."""
        if self.ring is None:
            return None
        try:
            with open(self.state_path) as f:
                state = json.load(f)
            os.kill(int(state["reader_pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state

    def fetch(self, path: str, timeout: float = 5.0) -> Any:
        """GETs ``path`` (below the UI prefix) from the reader as JSON."""
        state = self.state()
        if state is None:
            raise RuntimeError(f"no profilis-reader is running for {self.ring}")
        url = state["ui_url"].rstrip("/") + "/" + path.lstrip("/")
        req = urllib.request.Request(url)
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    # -- supervision ------------------------------------------------------

    def start(self, ring: str) -> None:
        """Starts the supervisor thread for ``ring`` (once per process)."""
        with self._cond:
            if self.ring is not None and self.ring != ring:
                raise RuntimeError(f"the reader sidecar is for {self.ring}, not {ring}")
            self.ring = ring
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._supervise, name="profilis-sidecar", daemon=True)
            self._thread.start()

    def _supervise(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lock_fd = fd
        # Blocks while another process (or the reader it started) holds it.
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._holding = True
        log.debug("profilis: pid %d supervises the reader of %s", os.getpid(), self.ring)
        backoff = 0.5
        while True:
            generation = self._settle()
            started = time.monotonic()
            with self._spawn_lock:
                if self._exiting:
                    return
                proc = self._spawn(fd)
            restart = False
            while proc is not None and proc.poll() is None:
                with self._cond:
                    restart = self._cond.wait_for(lambda: self._generation != generation, timeout=0.5)
                if restart:
                    log.info("profilis: reader settings changed; restarting it (it drains first)")
                    proc.terminate()
                    proc.wait()
                    break
            if restart:
                continue
            if proc is not None:
                log.warning("profilis: profilis-reader (pid %d) exited with status %s", proc.pid, proc.returncode)
            if time.monotonic() - started > 60:
                backoff = 0.5
            log.info("profilis: restarting profilis-reader in %.1f s", backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, _RESTART_MAX_SECS)

    def _settle(self) -> int:
        """Waits until the settings have been still for SETTLE_SECS."""
        while True:
            with self._cond:
                generation = self._generation
                wait = self._changed_at + SETTLE_SECS - time.monotonic()
            if wait <= 0:
                return generation
            time.sleep(wait)

    def _spawn(self, lock_fd: int) -> Optional[subprocess.Popen]:
        """Starts the reader (None when it cannot be started: logged). Its
        stderr goes to ``RING.reader.log``, which a thread copies into the
        logger: a file, not a pipe, as the reader may outlive this process."""
        with self._cond:
            token, css = self._token, self._css
        try:
            command = self.command()
            if css is not None:
                _write_private(self.css_path, css)
            env = dict(os.environ)
            env.pop("PROFILIS_UI_TOKEN", None)
            env.pop("PROFILIS_UI_ADDR", None)
            if token:
                env["PROFILIS_UI_TOKEN"] = token
            log.debug("profilis: starting %s", " ".join(command))
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stderr=log_fd,
                    env=env,
                    pass_fds=(lock_fd,),  # the reader holds the lock too
                    start_new_session=True,  # a Ctrl-C to the app does not cut its final drain short
                )
            finally:
                os.close(log_fd)
        except (OSError, RuntimeError) as exc:
            log.error("profilis: cannot start profilis-reader: %s", exc)
            return None
        self._proc = proc
        self.reader_pid = proc.pid
        threading.Thread(target=self._pump, args=(proc,), name="profilis-sidecar-log", daemon=True).start()
        return proc

    def _pump(self, proc: subprocess.Popen) -> None:
        """The reader's log lines into the ``profilis`` logger (warnings and
        errors at WARNING, the rest at DEBUG); the dashboard's address into
        the state file."""
        with open(self.log_path, "rb") as f:
            pending = b""
            while True:
                chunk = f.read()
                if not chunk:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._log_line(proc, raw.decode("utf-8", "replace").rstrip())

    def _log_line(self, proc: subprocess.Popen, line: str) -> None:
        if "dashboard at " in line:
            url = line.split("dashboard at ", 1)[1].split()[0]
            state = {"reader_pid": proc.pid, "ui_url": url, "supervisor_pid": os.getpid(), "ring": self.ring}
            _write_private(self.state_path, json.dumps(state))
        lowered = line.lower()
        level = logging.WARNING if ("error" in lowered or "warning" in lowered) else logging.DEBUG
        log.log(level, "profilis-reader[%d]: %s", proc.pid, line)

    def at_exit(self) -> None:
        """At interpreter exit: a process that wrote events but exits
        before any reader started (a short script) starts one now, without
        waiting for the settings to settle; it drains the ring and exits
        after the grace period. Nothing to do when a reader runs (this
        process's, or one another process started: the lock is taken)."""
        if self.ring is None:
            return
        with self._spawn_lock:
            self._exiting = True
            if self._proc is not None and self._proc.poll() is None:
                return
            fd = self._lock_fd if self._holding else None
            if fd is None:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    return
            proc = self._spawn(fd)
            if proc is not None:
                log.debug("profilis: started profilis-reader (pid %d) at exit to drain %s", proc.pid, self.ring)

    def after_fork_in_child(self) -> None:
        """A forked child supervises nothing: it drops the parent's lock
        descriptor (so the lock does not outlive the parent through it) and
        starts its own supervisor, which waits for the lock."""
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)
            except OSError:
                pass
            self._lock_fd = None
        self._cond = threading.Condition()
        self._spawn_lock = threading.Lock()
        self._thread = None
        self._holding = False
        self._proc = None
        self.reader_pid = None
        if self.ring is not None:
            self.start(self.ring)


def _write_private(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_SIDECAR = Sidecar()
os.register_at_fork(after_in_child=_SIDECAR.after_fork_in_child)
atexit.register(_SIDECAR.at_exit)


def sidecar() -> Sidecar:
    """The process's sidecar."""
    return _SIDECAR
