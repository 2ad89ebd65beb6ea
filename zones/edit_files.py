"""The I/O around `zones.edit`: read a zone directory's texts, check an edit in a copy, show it as a
unified diff, write it with atomic replaces.

    texts = read_texts(directory)                     # *.zone files and what they $INCLUDE
    problems = validate(directory, texts, changes)    # load + zones.check in a temporary copy
    print(unified_diff(texts, changes))
    write_changes(directory, changes)                 # each file: temp file + fsync + os.replace

Only zones whose files change (or that are new) are validated: an unrelated broken zone does not
block an edit. Problems name the real files (the copy's paths are translated back).
"""
from __future__ import annotations

import difflib
import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from zones.edit import included_files, zonefile_origin
from zones.edit_text import EditError
from zones.errors import ZoneProblem
from zones.loader import load_checked, zone_files

Changes = Mapping[str, "str | None"]


def _inside(key: str) -> bool:
    return not (posixpath.isabs(key) or key == ".." or key.startswith("../"))


def read_texts(directory: Path) -> dict[str, str]:
    """Every `*.zone` file of `directory` and every file they include (keys relative to it)."""
    texts: dict[str, str] = {}
    queue = [path.name for path in zone_files(directory)]
    while queue:
        key = queue.pop(0)
        if key in texts:
            continue
        if not _inside(key):
            raise EditError(f"$INCLUDE of {key}, outside {directory}: the editor handles one directory")
        try:
            texts[key] = (directory / key).read_text(encoding="utf-8")
        except OSError as exc:
            raise EditError(f"{directory / key}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise EditError(f"{directory / key}: not UTF-8 text: {exc}") from None
        queue += included_files(key, texts[key])
    return texts


def _touched_zonefiles(texts: Mapping[str, str], changes: Changes) -> list[str]:
    """The zonefiles (after the edit) that read a changed file."""
    after = {**texts, **changes}
    keys: list[str] = []
    for key, text in sorted(after.items()):
        if zonefile_origin(key) is None or text is None:
            continue
        seen, queue = {key}, [key]
        while queue:
            current = queue.pop()
            current_text = after.get(current)
            if current_text is None:
                continue
            for target in included_files(current, current_text):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        if seen & set(changes):
            keys.append(key)
    return keys


def validate(directory: Path, texts: Mapping[str, str], changes: Changes) -> list[ZoneProblem]:
    """Load and check, in a temporary copy of `directory` with the edit applied, every zone the
    edit touches; their problems, naming the files of `directory`."""
    problems: list[ZoneProblem] = []
    with tempfile.TemporaryDirectory(prefix="semdns-edit-") as tmp:
        root = Path(tmp) / directory.name
        # the whole directory, so that whatever a check may read beside the zonefiles is there too
        shutil.copytree(directory, root, symlinks=True)
        for key, text in {**texts, **changes}.items():
            path = root / key
            if text is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for key in _touched_zonefiles(texts, changes):
            _loaded, found = load_checked(root / key)
            problems += found
        prefix = str(root) + os.sep
        real = str(directory) + os.sep
        return [
            ZoneProblem(p.file.replace(prefix, real, 1), p.line, p.message.replace(prefix, real), p.severity)
            for p in problems
        ]


def unified_diff(texts: Mapping[str, str], changes: Changes) -> str:
    out: list[str] = []
    for key in sorted(changes):
        before = texts.get(key)
        after = changes[key]
        out += difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile=f"a/{key}" if before is not None else "/dev/null",
            tofile=f"b/{key}" if after is not None else "/dev/null",
        )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def write_changes(directory: Path, changes: Changes) -> None:
    """Write each changed file atomically (same folder temp file, fsync, rename); delete the
    removed ones last. Fragments are written before the zonefiles that include them."""
    order = sorted(changes, key=lambda k: (zonefile_origin(k) is not None, k))
    for key in order:
        text = changes[key]
        if text is None:
            continue
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    for key in sorted(changes, key=lambda k: (zonefile_origin(k) is None, k)):
        if changes[key] is None:
            (directory / key).unlink(missing_ok=True)
