"""``manage.py fsck [--workspace W] [--repair]``: a per-file report of the chunk store."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from disks.fsck import DEGRADED, LOST, OK, manifests_fsck
from files.selectors import manifest_labels


class Command(BaseCommand):
    help = (
        "Check every stored file (ok / degraded / lost), reading and verifying every copy; with --repair, "
        "bring damaged files back to their full number of copies from a healthy one. A file that cannot "
        "be repaired is left exactly as it is. Exit status 1 when a file is still degraded or lost."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", metavar="W", help="Only this workspace (its id).")
        parser.add_argument("--repair", action="store_true", help="Re-replicate damaged chunks from good copies.")
        parser.add_argument(
            "--no-verify",
            dest="verify",
            action="store_false",
            help="Trust the recorded state of each copy instead of reading it (fast, less thorough).",
        )
        parser.add_argument("--problems-only", action="store_true", help="Print only files that are not ok.")

    def handle(self, *args, workspace=None, repair=False, verify=True, problems_only=False, **options):
        from accounts.models import Workspace

        scope = None
        if workspace:
            try:
                scope = Workspace.objects.filter(pk=workspace).first()
            except ValidationError:
                scope = None
            if scope is None:
                raise CommandError(f"no workspace {workspace}")
        counts = {OK: 0, DEGRADED: 0, LOST: 0}
        repaired = 0
        styles = {OK: self.style.SUCCESS, DEGRADED: self.style.WARNING, LOST: self.style.ERROR}
        for report in manifests_fsck(
            workspace=scope,
            repair=repair,
            verify=verify,
            labels_for=lambda ids: manifest_labels(manifest_ids=ids),
        ):
            counts[report.status] += 1
            if report.damaged_chunks and report.status == OK:
                repaired += 1
            if problems_only and report.status == OK and not report.damaged_chunks:
                continue
            detail = f"{report.size} bytes, {report.chunks} chunks"
            if report.damaged_chunks:
                detail += f", {report.damaged_chunks} damaged, {report.repaired_chunks} repaired"
            if report.problems:
                detail += "; " + "; ".join(report.problems)
            self.stdout.write(
                f"{styles[report.status](report.status.ljust(8))} {report.label}  "
                f"[workspace {report.workspace_id}] ({detail})"
            )
        total = sum(counts.values())
        summary = f"{total} files: {counts[OK]} ok, {counts[DEGRADED]} degraded, {counts[LOST]} lost"
        if repair:
            summary += f" ({repaired} repaired)"
        self.stdout.write(summary)
        if counts[DEGRADED] or counts[LOST]:
            hint = "" if repair else "; run with --repair to re-replicate degraded files"
            raise CommandError(f"{counts[DEGRADED] + counts[LOST]} file(s) not ok{hint}", returncode=1)
