"""Model data collection into a local folder (``DATA_COLLECTION_FOLDER``, the local run's
``python -m scoring.demo``): the part of the blob API the collector's writer uses
(``get_blob_client(name).append_block(data)``), on files, so the layout stays Azure ML's
(``<folder>/modelDataCollector/...``) and nothing signs in to Azure."""

from __future__ import annotations

from pathlib import Path


class Folder:
    """The container's part of the blob API the writer uses, on a local folder: a blob is a file
    under it (``modelDataCollector/...``), an append block an append to that file."""

    def __init__(self, folder: str) -> None:
        self.root = Path(folder)
        self.url = self.root.resolve().as_uri()

    def get_blob_client(self, name: str) -> FolderBlob:
        return FolderBlob(self.root / name)


class FolderBlob:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append_block(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:  # one write of whole lines: appends do not interleave
            f.write(data)
