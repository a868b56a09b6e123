"""Flask integration: ``ProfilisFlask`` (one REQ event per request,
:mod:`profilis.flask.adapter`) and ``make_ui_blueprint`` (the dashboard
mounted in the app, :mod:`profilis.flask.ui`).

    from profilis.flask import ProfilisFlask            # or profilis.flask.adapter
"""

from profilis.flask.adapter import UNMATCHED_ROUTE, ProfilisFlask

__all__ = ["ProfilisFlask", "UNMATCHED_ROUTE"]
