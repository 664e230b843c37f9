"""The embedded default's e-mail: one .eml file per message under var/mail/, echoed to the console."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.utils import timezone


class FileAndConsoleBackend(BaseEmailBackend):
    def __init__(self, *args, file_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.folder = Path(file_path or settings.EMAIL_FILE_PATH)
        self._console = ConsoleBackend(*args, **kwargs)

    def send_messages(self, email_messages) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            # Sortable by time, unique across processes.
            name = f"{timezone.now():%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:8]}.eml"
            tmp = self.folder / f".{name}.tmp"
            tmp.write_bytes(message.message().as_bytes(linesep="\n"))
            tmp.rename(self.folder / name)  # readers never see half a message
            sent += 1
        self._console.send_messages(email_messages)
        return sent
