"""Config key paths in messages: one line naming every failing key, what its section allows,
and where a misplaced key lives (``--set epochs=3``: ``train.epochs``). The schema (the
root pydantic model) is passed in, so this file knows no section by name."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError


def format_error(root: type[BaseModel], err: ValidationError) -> str:
    """One line: every failing key path with pydantic's reason."""
    parts = []
    for e in err.errors():
        loc = ".".join(_key(x) for x in e["loc"]) or "config"
        msg = " ".join(e["msg"].removeprefix("Value error, ").split())
        if e["type"] == "extra_forbidden":
            parent = e["loc"][:-1]
            msg = f"unknown key (allowed: {', '.join(allowed_keys(root, parent))})"
            elsewhere = [k for k in keys_named(root, str(e["loc"][-1])) if k != loc]
            if elsewhere:  # --set epochs=3: the key exists, under another section
                msg += f"; did you mean {' or '.join(elsewhere)}?"
        parts.append(f"{loc}: {msg}")
    return "invalid config: " + "; ".join(parts)


def _key(x: Any) -> str:
    """A key as shown in a message: quoted when it is not a plain name (keeps one line)."""
    text = str(x)
    return text if isinstance(x, int) or text.replace("-", "_").isidentifier() else repr(text)


def allowed_keys(root: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys the section at ``path`` (list indices skipped) allows; [] if none."""
    model: Any = root
    for key in path:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(str(key))
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next(
            (a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if model is None:
            return []
    return sorted(model.model_fields)


def keys_named(root: type[BaseModel], name: str) -> list[str]:
    """Dotted keys whose last part is ``name`` (``-`` read as ``_``): ``epochs`` ->
    ``["train.epochs"]``; if none is, those whose last part is close to it (a typo:
    ``epoch`` -> ``["train.epochs"]``). Also the CLI's hint when ``--epochs`` is typed for
    ``--set``."""
    name = name.replace("-", "_").lower()
    keys: list[str] = []

    def walk(model: Any, prefix: str) -> None:
        for key, field in model.model_fields.items():
            keys.append(prefix + key)
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{key}.")

    walk(root, "")
    exact = [k for k in keys if k.rpartition(".")[2] == name]
    if exact or len(name) < 3:
        return exact
    close = set(difflib.get_close_matches(name, [k.rpartition(".")[2] for k in keys], 3, 0.8))
    return [k for k in keys if k.rpartition(".")[2] in close]
