"""Progress displays for long CLI work (image builds, boots, fast-forward)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def spinner(console: Console, title: str) -> Iterator[Callable[[str], None]]:
    """A spinner whose text the caller updates with each step it reaches."""
    with Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task(title, step="")

        def update(step: str) -> None:
            progress.update(task, step=step[:100])

        yield update
        progress.update(task, step="done")


@contextmanager
def bar(console: Console, title: str, total: float, unit: str) -> Iterator[Callable[[float, str], None]]:
    """A bar to ``total`` (e.g. device hours); the callback sets the completed amount."""
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:.1f}/{task.total:.0f} " + unit),
        TextColumn("{task.fields[step]}"), TimeElapsedColumn(), console=console,
    ) as progress:
        task = progress.add_task(title, total=total, step="")

        def update(done: float, step: str = "") -> None:
            progress.update(task, completed=min(done, total), step=step[:60])

        yield update
