"""Flask adapter: one REQ event per request.

    from flask import Flask
    from profilis.flask.adapter import ProfilisFlask   # also profilis.flask

    app = Flask(__name__)
    ProfilisFlask(app, exclude_routes=["/health", "/static"], sample=0.1)
    # or, with the classic collector: ProfilisFlask(app, collector=collector, ...)

Each request is recorded under its route template (``/users/<int:id>``,
never the raw path; ``<unmatched>`` when no route matched, as for a 404),
with its method, status, duration, bytes in and out, and, when an
exception escaped the view, its type and message (a 500). An incoming W3C
``traceparent`` header continues the caller's trace; the request's trace
id and span are current while it runs, so FN and DB events recorded
inside carry them. Sampling is decided first, from the trace id, so a
trace is kept or dropped whole (and the same way by every service using
the same rate); unsampled requests cost one native call.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import profilis
from profilis._native import start_request

try:
    from flask import Flask, Response, request
except ImportError as exc:  # pragma: no cover - exercised without Flask only
    raise ImportError("profilis.flask needs Flask: pip install flask") from exc

__all__ = ["ProfilisFlask", "UNMATCHED_ROUTE", "UI_BLUEPRINT"]

#: Name of the blueprint ``profilis.flask.ui.make_ui_blueprint`` makes; its
#: requests (the dashboard's own polling) are not recorded.
UI_BLUEPRINT = "profilis_ui"
_UI_ENDPOINTS = UI_BLUEPRINT + "."

#: Route name of requests that matched no route (404, 405).
UNMATCHED_ROUTE = "<unmatched>"

_SCOPE = "profilis.scope"


class ProfilisFlask:
    """Instruments a Flask app; ``init_app`` supports the factory pattern.

    :param exclude_routes: paths not recorded: an entry matches the path
        itself and everything below it (``"/static"`` excludes
        ``/static/app.js``), or a route template exactly.
    :param sample: fraction of traces recorded, 0.0 to 1.0 (default 1.0).
    :param traceparent_out: add a ``traceparent`` header naming the
        request's span to every response.
    :param ring: ring file to open if ``profilis.init`` was not called
        (default: ``PROFILIS_RING`` or ``/dev/shm/profilis-<uid>.ring``).
    :param service: service name recorded for this process when the ring
        is opened here.
    :param collector: a ``profilis.core.async_collector.AsyncCollector``
        (classic API): its ring is the one written to (it opened it), and
        its reader sidecar drains it. Without it, ``ring``/``service`` and
        a reader run separately apply.
    """

    def __init__(
        self,
        app: Optional[Flask] = None,
        *,
        exclude_routes: Iterable[str] = (),
        sample: float = 1.0,
        traceparent_out: bool = False,
        ring: Optional[str] = None,
        service: Optional[str] = None,
        collector: Any = None,
    ) -> None:
        if collector is not None:
            from profilis.core.async_collector import AsyncCollector

            if not isinstance(collector, AsyncCollector):
                raise TypeError(f"collector must be an AsyncCollector, got {collector!r}")
            if ring is not None and ring != collector.ring:
                raise ValueError(f"ring {ring!r} differs from the collector's {collector.ring!r}")
            ring = collector.ring
        self.collector = collector
        if isinstance(exclude_routes, str):
            raise TypeError("exclude_routes must be a list of paths, not a string")
        sample = float(sample)
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"sample must be between 0.0 and 1.0, got {sample}")
        self.exclude_routes = tuple(exclude_routes)
        self._exclude_exact = frozenset(r.rstrip("/") or "/" for r in self.exclude_routes)
        self._exclude_prefixes = tuple(
            (r.rstrip("/") + "/") for r in self.exclude_routes if r.rstrip("/")
        )
        self.sample = sample
        self.traceparent_out = traceparent_out
        self.ring = ring
        self.service = service
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Registers the request hooks on ``app`` (first before-request
        hook, last after-request and teardown hooks, so the whole request
        is inside the span)."""
        if not profilis.is_initialized():
            profilis.init(self.ring, service=self.service)
        app.before_request_funcs.setdefault(None, []).insert(0, self._before_request)
        # Flask runs after-request and teardown functions in reverse order of
        # registration: the first in the list runs last.
        app.after_request_funcs.setdefault(None, []).insert(0, self._after_request)
        app.teardown_request_funcs.setdefault(None, []).insert(0, self._teardown_request)
        app.extensions["profilis"] = self

    def _excluded(self, path: str, rule: Any) -> bool:
        stripped = path.rstrip("/") or "/"
        if stripped in self._exclude_exact or path.startswith(self._exclude_prefixes):
            return True
        return rule is not None and rule.rule in self._exclude_exact

    def _before_request(self) -> None:
        # One proxy lookup (attribute access through the proxy costs
        # microseconds); the real request object from here on.
        req = request._get_current_object()  # type: ignore[attr-defined]
        environ = req.environ
        rule = req.url_rule  # routing ran when the request context was pushed
        if self.exclude_routes and self._excluded(req.path, rule):
            return None
        if rule is not None and rule.endpoint.startswith(_UI_ENDPOINTS):
            return None
        # The scope keeps what the event records (for a sampled request),
        # so the later hooks only add the response.
        environ[_SCOPE] = start_request(
            environ.get("HTTP_TRACEPARENT"),
            self.sample,
            rule.rule if rule is not None else UNMATCHED_ROUTE,
            req.method,
            environ.get("CONTENT_LENGTH"),
        )
        return None

    def _after_request(self, response: Response) -> Response:
        scope = request._get_current_object().environ.get(_SCOPE)  # type: ignore[attr-defined]
        if scope is not None:
            if scope.sampled:
                # The header's text: cheaper than the parsing property.
                scope.respond(response.status_code, response.headers.get("Content-Length"))
            if self.traceparent_out:
                header = scope.traceparent()
                if header is not None:
                    response.headers["traceparent"] = header
        return response

    def _teardown_request(self, exc: Optional[BaseException]) -> None:
        scope = request._get_current_object().environ.pop(_SCOPE, None)  # type: ignore[attr-defined]
        if scope is not None:
            # Without a response noted (an exception escaped, propagated in
            # debug/testing mode or raised by an after-request hook), the
            # request is recorded as a 500.
            scope.end(None if exc is None else _reportable(exc))


def _reportable(exc: Optional[BaseException]) -> Optional[BaseException]:
    """The exception to record. SQLAlchemy's statement errors quote the SQL
    and its parameters in their message; record the driver's exception
    they wrap instead (same type name), so no query value reaches the
    ring."""
    if exc is None:
        return None
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException) and hasattr(exc, "statement"):
        return orig
    return exc
