"""The console's pages: one module each, found here by name.

A page module defines ``PAGE``, a ``Page``: where it lives (``/ui/<slug>``;
the overview is also ``/``), its title, whether and where it shows in the
navigation, the HTML of its body and the script that fills it from the API.
Adding a page is adding a module here; nothing else changes. A page whose
data needs a role shows in the navigation only to keys that may call
``needs`` (a ``"METHOD /path"`` of the route table).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Page:
    slug: str
    title: str
    body: str
    script: str
    order: int = 100  # place in the navigation; 0 hides it
    needs: str = ""  # the route whose role a key needs to see the page in the navigation


def discover() -> list[Page]:
    """Every page module's ``PAGE``, in navigation order."""
    pages = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        page = getattr(module, "PAGE", None)
        if isinstance(page, Page):
            pages.append(page)
    return sorted(pages, key=lambda p: (p.order, p.slug))
