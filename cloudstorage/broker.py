"""The embedded default's Celery broker: kombu's filesystem transport, with messages that appear whole.

kombu's filesystem transport creates a message file under its final name and only then writes it,
so a consumer polling the folder can take the file while it is still empty; its ``json.loads``
error is not caught, and the whole worker stops ("Unrecoverable error: JSONDecodeError", kombu
issue #1551). The fault run of issue 18 hit it under load: the worker died and no repair ran for the
rest of the run. Here a message is written under a name the consumer ignores and renamed into place
(a rename within a folder is atomic), and a message that cannot be decoded anyway (left by a writer
of an older version) is moved aside to ``<processed folder>/undecodable/`` and logged, never fatal.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# The consumer only takes names whose part after the first dot is exactly "<queue>.msg".
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        """The next message of ``queue`` (kombu's, but an undecodable message is set aside)."""
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            taken = os.path.join(self.processed_folder if self.store_processed else tempfile.gettempdir(), name)
            try:
                # Whoever renames it first owns it: another consumer gets OSError and moves on.
                shutil.move(os.path.join(self.data_folder_in, name), taken)
            except OSError:
                continue
            try:
                payload = Path(taken).read_bytes()
                if not self.store_processed:
                    os.remove(taken)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {taken!r} from queue.") from exc
            try:
                return loads(bytes_to_str(payload))
            except ValueError:
                self._set_aside(payload)
        raise Empty()

    def _set_aside(self, payload: bytes) -> None:
        folder = Path(self.processed_folder) / "undecodable"
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.msg"
        kept.write_bytes(payload)
        logger.error("a broker message that cannot be decoded was set aside in %s (%d bytes)", kept, len(payload))


class Transport(filesystem.Transport):
    Channel = Channel
