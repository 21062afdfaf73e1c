"""The part both widgets share: an ipywidgets view built on first use and redrawn from its owner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets

__all__ = ["View", "ViewOwner"]


class View:
    """Base of the widget views: builds the UI once (:meth:`build`), redraws it (:meth:`refresh`).

    Subclasses set the controls in :meth:`build` and fill them from their owner's state in
    :meth:`refresh`; while :meth:`syncing` is active, control callbacks must not edit.

    Examples
    --------
    >>> class Hello(View):
    ...     def build(self):
    ...         import ipywidgets as w
    ...         self.label = w.HTML()
    ...         return w.VBox([self.label])
    ...     def refresh(self):
    ...         self.label.value = "hello"
    >>> v = Hello()
    >>> v.widget.children[0].value, v.widget is v.widget
    ('hello', True)
    """

    def __init__(self) -> None:
        self._widget: ipywidgets.VBox | None = None
        self._syncing = False

    @property
    def widget(self) -> ipywidgets.VBox:
        """The ipywidgets UI, built and drawn on first access."""
        if self._widget is None:
            self._widget = self.build()
            self.refresh()
        return self._widget

    def build(self) -> ipywidgets.VBox:  # pragma: no cover - abstract
        raise NotImplementedError

    def refresh(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @contextmanager
    def syncing(self) -> Iterator[None]:
        """Set controls from the state without their callbacks acting on it."""
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    def status(self, html: str) -> None:  # pragma: no cover - overridden where there is a status line
        """Show a line of status (views without a status line ignore it)."""

    def guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run an edit from a button; show errors in the status line instead of raising."""
        try:
            fn(*args, **kwargs)
        except (ValueError, KeyError, TypeError) as exc:
            self.status(f"<span style='color:#b00'>{type(exc).__name__}: {exc}</span>")
            return
        self.status(f"done: {getattr(fn, '__name__', 'edit')}")


V = TypeVar("V", bound=View)


class ViewOwner(Generic[V]):
    """A headless object with an optional UI: ``.widget`` builds its :class:`View` on first access.

    Subclasses set ``_view = None`` in ``__init__`` and implement :meth:`_make_view`.

    Examples
    --------
    >>> from imm_analysis.widgets._demo import demo_browser
    >>> b = demo_browser()
    >>> b.refresh()  # headless, before the widget is built: nothing to redraw
    >>> type(b.widget).__name__, b.widget is b.widget
    ('VBox', True)
    """

    _view: V | None

    def _make_view(self) -> V:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def widget(self) -> ipywidgets.VBox:
        """The ipywidgets UI (built on first access; works without a display).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, _ = demo_tuner(flat=True)  # zero coordinates: no UMAP run
        >>> type(tuner.widget).__name__
        'VBox'
        """
        if self._view is None:
            self._view = self._make_view()
        return self._view.widget

    def refresh(self) -> None:
        """Redraw the UI from the current state (nothing to do before the widget is built).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_browser
        >>> demo_browser().refresh()  # headless, before the widget is built: nothing to redraw
        """
        if self._view is not None and self._view._widget is not None:
            self._view.refresh()
