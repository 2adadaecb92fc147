import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from . import catalog


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Stopped by its owner: what had not been sent is never sent, and the answer to a request
    # already sent is thrown away when it comes (see Edit.cancel).
    CANCELLED = "cancelled"


ACTIVE = (Status.QUEUED, Status.RUNNING)
# An edit of a batch whose image is still to be read (Edit.pending_file, Edit.pending_url).
PREPARING = ~models.Q(pending_file="", pending_url="")
# Signs what an edit page's poll sends back (Edit.progress_token).
PROGRESS_SIGNER = signing.Signer(salt="imageedits.edit-progress")


def longest_step_seconds() -> int:
    """The longest one task of the pipeline can take: the upstream's answer, the download of its
    results, and storing them (each bounded by its own deadline)."""
    return settings.UPSTREAM_TIMEOUT + settings.RESULT_DOWNLOAD_TIMEOUT + settings.LEASE_MARGIN


class StateMachine(models.Model):
    """A status that only moves forward, by conditional updates: a repeated task or a late
    callback cannot move a row that has already moved on. Each change returns True if this
    call made it."""

    Status = Status
    ACTIVE = ACTIVE

    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def duration(self) -> float | None:
        """Seconds from the worker picking it up to its end."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def _fence(self) -> dict:
        """Extra conditions a change needs besides the status (none here)."""
        return {}

    def _transition(self, allowed: tuple[str, ...], **changes) -> bool:
        rows = type(self).objects.filter(pk=self.pk, status__in=allowed, **self._fence())
        updated = rows.update(**changes)
        if updated:
            for field, value in changes.items():
                setattr(self, field, value)
        return bool(updated)

    def mark_running(self) -> bool:
        return self._transition((Status.QUEUED,), status=Status.RUNNING, started_at=timezone.now())

    def mark_failed(self, code: str, message: str) -> bool:
        return self._transition(
            ACTIVE,
            status=Status.FAILED,
            error_code=code,
            error_message=message,
            finished_at=timezone.now(),
        )


class Edit(StateMachine):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edits"
    )
    prompt = models.TextField()
    model = models.CharField(max_length=40, choices=[(name, name) for name in catalog.MODELS])
    size = models.CharField(max_length=20, blank=True, help_text="Empty means the model decides.")
    # The model's extra parameters as requested (quality, background, ...), only those it takes.
    params = models.JSONField(default=dict, blank=True)
    candidates = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(catalog.MAX_CANDIDATES)],
    )
    # PNG whose transparent pixels mark where to edit the first input.
    mask = models.FileField(blank=True)
    # Paste the first input's pixels outside the mask back over each result.
    keep_unmasked = models.BooleanField(default=False)
    # What the submission cost: candidates x the model's unit price, when the price is known.
    credits = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    # What was billed, set when the edit ends: the results that came back x the unit price
    # (a failed edit with none: 0). Empty while under way, or with no price.
    billed_credits = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When its run was last put in the queue (the reaper queues it again if that was lost).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # The edit whose result this one edits ("edit this result"): versions form a tree.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    starred = models.BooleanField(default=False)
    collections = models.ManyToManyField("Collection", blank=True, related_name="edits")
    # Members of the owner's teams may see it, read-only, in their Team gallery.
    shared_with_team = models.BooleanField(default=False)
    # Moves on by one whenever one of its requests moves: with the status, it tells the page's
    # poll whether there is anything new to show, from one indexed row.
    progress = models.PositiveIntegerField(default=0)
    # The result shown first (history card, share links, team view): always one that exists
    # once the edit has results (Edit.choose, Edit.settle).
    chosen_position = models.PositiveSmallIntegerField(default=0)
    # The batch or comparison this edit was made in, if any (see Batch).
    batch = models.ForeignKey(
        "Batch", on_delete=models.SET_NULL, null=True, blank=True, related_name="edits"
    )
    # Its image's name in the batch (a file's name, a URL's last part): its tile's caption
    # and, with the batch's number, its name in the batch's ZIP of results.
    batch_name = models.CharField(max_length=200, blank=True)
    # While its batch prepares its image (batches.prepare_image): the image as it was given,
    # stored as uploaded (or its URL, not yet fetched); both empty once its input is stored.
    # Meanwhile `enqueued_at` is when its preparation was queued (the reaper's lease).
    pending_file = models.FileField(blank=True)
    pending_url = models.URLField(max_length=2000, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The gallery: a person's edits newest first, optionally by status or model.
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["owner", "status", "-created_at"]),
            models.Index(fields=["owner", "model", "-created_at"]),
            # The reaper's scans and the per-person limits: only edits under way, a few rows
            # however long the history grows.
            models.Index(
                fields=["owner", "created_at"],
                condition=models.Q(status__in=ACTIVE),
                name="edit_under_way",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(candidates__gte=1, candidates__lte=catalog.MAX_CANDIDATES),
                name="candidates_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Edit {self.pk} ({self.model}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("edit-detail", args=[self.pk])

    @property
    def image_model(self) -> catalog.ImageModel:
        return catalog.MODELS[self.model]

    @property
    def progress_token(self) -> str:
        """What the page's poll sends back to ask whether anything changed: the owner, the
        edit and where it stands, signed, so that the answer needs neither session nor user."""
        return PROGRESS_SIGNER.sign(f"{self.owner_id}.{self.pk}.{self.status}.{self.progress}")

    @classmethod
    def unchanged(cls, edit_id: int, token: str) -> bool:
        """Whether the edit is still under way just as the page that holds `token` shows it.
        A token this server did not sign, or signed for another edit, is never "unchanged":
        the poll then takes the full way, logged-in owner and all. One lookup by primary key,
        in plain SQL: building it with the ORM would cost more than the rest of the poll."""
        try:
            owner_id, token_edit_id, status, progress = PROGRESS_SIGNER.unsign(token).split(".")
        except (signing.BadSignature, ValueError):
            return False
        if token_edit_id != str(edit_id) or status not in ACTIVE:
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {cls._meta.db_table} "
                "WHERE id = %s AND owner_id = %s AND status = %s AND progress = %s",
                [edit_id, int(owner_id), status, int(progress)],
            )
            return cursor.fetchone() is not None

    @property
    def is_preparing(self) -> bool:
        """Its image, given to a batch, is still being read (see Batch.preparing)."""
        return bool(self.pending_file or self.pending_url)

    @property
    def waited(self) -> float | None:
        """Seconds in the queue before a worker took the edit."""
        return (self.started_at - self.created_at).total_seconds() if self.started_at else None

    @property
    def file_stem(self) -> str:
        """A download name that says what the file is: edit-12-make-it-sepia."""
        words = slugify(self.prompt)[:40].rstrip("-")
        return f"edit-{self.pk}-{words}" if words else f"edit-{self.pk}"

    def lineage(self) -> list["Edit"]:
        """This edit's ancestors, the original first (one query a generation)."""
        chain, seen, edit = [], {self.pk}, self.parent
        while edit is not None and edit.pk not in seen:
            chain.append(edit)
            seen.add(edit.pk)
            edit = edit.parent
        return chain[::-1]

    def billed_for(self, results: int) -> Decimal | None:
        """Credits for `results` of this edit's results, at the unit price it was submitted at."""
        if self.credits is None:
            return None
        return (self.credits * results / self.candidates).quantize(Decimal("0.01"))

    def _transition(self, allowed: tuple[str, ...], **changes) -> bool:
        # The edit ends: bill the results that came back (all stored before it settles).
        if changes.get("status") in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED):
            changes["billed_credits"] = self.billed_for(self.results.count())
        return super()._transition(allowed, **changes)

    def mark_failed(self, code: str, message: str) -> bool:
        """The whole edit failed: so did every request of it still under way."""
        failed = super().mark_failed(code, message)
        for submission in self.submissions.filter(status__in=ACTIVE):
            submission.mark_failed(code, message)
        return failed

    def cancel(self) -> bool:
        """Stop the edit for good. Its requests not yet sent (queued, or waiting to be retried)
        are never sent; a request already sent cannot be called back, so it is cancelled too and
        its answer, should one come, is discarded by finish() (its conditional update fails).
        Results stored before the cancel stay. True if this call cancelled the edit."""
        now = timezone.now()
        with transaction.atomic():
            cancelled = self._transition(ACTIVE, status=Status.CANCELLED, finished_at=now)
            if cancelled:
                self.submissions.filter(status__in=ACTIVE).update(
                    status=Status.CANCELLED, lease_expires_at=None, finished_at=now
                )
        return cancelled

    def choose(self, position: int) -> bool:
        """Make the result at `position` the one shown first; False if there is none there."""
        chosen = bool(
            Edit.objects.filter(pk=self.pk, results__position=position).update(
                chosen_position=position
            )
        )
        if chosen:
            self.chosen_position = position
        return chosen

    def results_chosen_first(self) -> list["ResultImage"]:
        """The results in order, the chosen one moved to the front."""
        results = list(self.results.all())
        results.sort(key=lambda result: result.position != self.chosen_position)
        return results

    def rerun(self) -> bool:
        """Put a failed edit back in the queue, with all its requests."""
        with transaction.atomic():
            queued = self._transition(
                (Status.FAILED,),
                status=Status.QUEUED,
                error_code="",
                error_message="",
                started_at=None,
                finished_at=None,
                billed_credits=None,
            )
            if queued:
                # The old task's ids and secret go, so its late callback or check can never
                # finish the new run.
                # Attempts move on by one, so a worker still busy with the old run (its
                # attempt number is now stale) can no longer move the request.
                self.submissions.update(
                    status=Status.QUEUED, error_code="", error_message="",
                    attempts=models.F("attempts") + 1,
                    attempts_before_run=models.F("attempts") + 1, retry_at=None,
                    lease_expires_at=None, started_at=None, finished_at=None, task_id="",
                    trace_id="", submitted_at=None, callback_secret_hash="",
                    callback_received_at=None,
                )  # fmt: skip
        return queued

    def settle(self) -> bool:
        """End the edit once none of its requests is under way: succeeded if any brought a
        result, failed (with the first request's reason) if none did."""
        submissions = list(self.submissions.all())
        if not submissions or any(submission.is_active for submission in submissions):
            return False
        if any(submission.status == Status.SUCCEEDED for submission in submissions):
            # The first result that came is the one shown until the owner picks another.
            first = self.results.order_by("position").values_list("position", flat=True).first()
            return self._transition(
                ACTIVE,
                status=Status.SUCCEEDED,
                finished_at=timezone.now(),
                chosen_position=first or 0,
            )
        first = submissions[0]
        return self._transition(
            ACTIVE,
            status=Status.FAILED,
            error_code=first.error_code,
            error_message=first.error_message,
            finished_at=timezone.now(),
        )


class Collection(models.Model):
    """A named board of edits, e.g. one per project."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections"
    )
    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_collection_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    """People who see each other's team-shared edits. Made in the app (see teams.py); each
    member has a role (Membership)."""

    name = models.CharField(max_length=80, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teams", through="Membership"
    )
    monthly_budget = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Credits the members may spend together each month; empty for no limit.",
    )

    def __str__(self) -> str:
        return self.name


class PersonBudget(models.Model):
    """How many credits one person may spend each month. Set by an admin."""

    person = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget"
    )
    monthly_budget = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )

    def __str__(self) -> str:
        return f"{self.person}: {self.monthly_budget} credits a month"


class Submission(StateMachine):
    """One request to the upstream for an edit: one a candidate, or one asking for all of
    them where the model takes `n` itself (dall-e-2)."""

    edit = models.ForeignKey(Edit, on_delete=models.CASCADE, related_name="submissions")
    index = models.PositiveSmallIntegerField()
    # How many images this request asks for.
    n = models.PositiveSmallIntegerField(default=1)
    task_id = models.CharField(max_length=100, blank=True)
    trace_id = models.CharField(max_length=100, blank=True)
    # The upstream's own timing in seconds, when it reports one.
    elapsed = models.FloatField(null=True, blank=True)
    # What the upstream says it used (size, quality, background, output format), if it says.
    reported = models.JSONField(default=dict, blank=True)
    # SHA-256 of the secret carried by this request's callback URL; the secret is not kept.
    callback_secret_hash = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # When the upstream last POSTed to this request's callback URL (a hint; the task record
    # is what counts).
    callback_received_at = models.DateTimeField(null=True, blank=True)
    # Tries so far; a failure worth retrying sends the request back to the queue until
    # UPSTREAM_ATTEMPTS is reached (error_code and error_message then say why it is retrying).
    attempts = models.PositiveSmallIntegerField(default=0)
    # Attempts made before the latest "Run again": this run's tries are attempts minus this.
    attempts_before_run = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    # While a worker waits for the answer: past this time, the worker is taken to have died
    # and the reaper sends the request again.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["edit", "index"], name="unique_submission_index"),
        ]
        # The reaper's scan for lost workers, queued requests and late callbacks.
        indexes = [
            models.Index(
                fields=["status", "lease_expires_at"],
                condition=models.Q(status__in=ACTIVE),
                name="submission_under_way",
            ),
        ]

    def __str__(self) -> str:
        return f"Request {self.index + 1} of edit {self.edit_id} ({self.status})"

    @property
    def first_position(self) -> int:
        """Where this request's results start among the edit's results."""
        return self.index * self.n

    @property
    def tries(self) -> int:
        """Tries in this run so far."""
        return self.attempts - self.attempts_before_run

    @property
    def is_retrying(self) -> bool:
        return self.status == Status.QUEUED and self.tries > 0

    @property
    def stage(self) -> str:
        """Where a request under way stands: "queued" (not sent yet), "retrying" (waiting to be
        sent again), "sent" (the image service has it) or "downloading" (its answer came and
        its images are being fetched and stored); "" once it has ended."""
        if self.status == Status.QUEUED:
            return "retrying" if self.tries > 0 else "queued"
        if self.status != Status.RUNNING:
            return ""
        # A task id without submitted_at: the answer came on the open connection
        # (mark_answered); a callback since this try was sent: the answer is ready to be read.
        if self.task_id and not self.submitted_at:
            return "downloading"
        called_back = self.callback_received_at and self.submitted_at
        if called_back and self.callback_received_at >= self.submitted_at:
            return "downloading"
        return "sent"

    def _transition(self, allowed: tuple[str, ...], **changes) -> bool:
        moved = super()._transition(allowed, **changes)
        if moved:
            Edit.objects.filter(pk=self.edit_id).update(progress=models.F("progress") + 1)
        return moved

    def _fence(self) -> dict:
        # Only the attempt this object knows may move the request: a worker that lost its
        # lease (and whose request was sent again) cannot overwrite the newer attempt.
        return {"attempts": self.attempts}

    def mark_running(self) -> bool:
        # A live worker ends its step within this, whatever the upstream does.
        lease_seconds = longest_step_seconds()
        now = timezone.now()
        taken = self._transition(
            (Status.QUEUED,),
            status=Status.RUNNING,
            started_at=self.started_at or now,
            attempts=models.F("attempts") + 1,
            retry_at=None,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        if taken:
            self.refresh_from_db(fields=["attempts"])
        return taken

    def mark_retrying(self, code: str, message: str, retry_at) -> bool:
        """Back to the queue, to be sent again at `retry_at`."""
        return self._transition(
            (Status.RUNNING,),
            status=Status.QUEUED,
            error_code=code,
            error_message=message,
            retry_at=retry_at,
            lease_expires_at=None,
        )

    def mark_submitted(self, task_id: str, trace_id: str) -> bool:
        """The upstream accepted the request and will call back: no worker waits for it."""
        return self._transition(
            (Status.RUNNING,),
            task_id=task_id,
            trace_id=trace_id,
            submitted_at=timezone.now(),
            lease_expires_at=None,
        )

    def mark_answered(self, task_id: str, trace_id: str) -> bool:
        """The upstream answered (and billed): should the worker stop before the results are
        stored, they are taken from the task record instead of sending the request again."""
        return self._transition((Status.RUNNING,), task_id=task_id, trace_id=trace_id)

    def record_callback(self) -> None:
        Submission.objects.filter(pk=self.pk).update(callback_received_at=timezone.now())

    def mark_succeeded(
        self, task_id: str, trace_id: str, elapsed: float | None, reported: dict | None = None
    ) -> bool:
        return self._transition(
            ACTIVE,
            status=Status.SUCCEEDED,
            task_id=task_id or self.task_id,
            trace_id=trace_id or self.trace_id,
            elapsed=elapsed,
            reported=reported or {},
            error_code="",
            error_message="",
            lease_expires_at=None,
            finished_at=timezone.now(),
        )

    def mark_failed(self, code: str, message: str, trace_id: str = "") -> bool:
        return self._transition(
            ACTIVE,
            status=Status.FAILED,
            error_code=code,
            error_message=message,
            trace_id=trace_id or self.trace_id,
            lease_expires_at=None,
            finished_at=timezone.now(),
        )

    def set_callback_secret(self, secret: str) -> None:
        self.callback_secret_hash = hashlib.sha256(secret.encode()).hexdigest()
        self.save(update_fields=["callback_secret_hash"])

    def callback_secret_matches(self, secret: str) -> bool:
        if not self.callback_secret_hash:
            return False
        candidate = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(candidate, self.callback_secret_hash)


class InputImage(models.Model):
    """One input of an edit: an uploaded image (stored re-encoded) or an image URL."""

    edit = models.ForeignKey(Edit, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField()
    file = models.FileField(blank=True)
    # A smaller WebP copy for the edit's page; empty for inputs stored before there were any.
    preview = models.FileField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["edit", "position"], name="unique_input_position"),
            models.CheckConstraint(
                condition=(models.Q(file="") & ~models.Q(url=""))
                | (~models.Q(file="") & models.Q(url="")),
                name="input_is_file_or_url",
            ),
        ]

    def __str__(self) -> str:
        return self.url or self.file.name


class ResultImage(models.Model):
    edit = models.ForeignKey(Edit, on_delete=models.CASCADE, related_name="results")
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="results")
    position = models.PositiveSmallIntegerField()
    # What to show: the model's output, or with keep_unmasked, the output with the original's
    # pixels put back outside the mask (the model's own output is then kept in raw_file).
    file = models.FileField()
    raw_file = models.FileField(blank=True)
    thumbnail = models.FileField()
    # A WebP copy for the edit's page; empty for results stored before there were any.
    preview = models.FileField(blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    revised_prompt = models.TextField(blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            # A task run twice or a duplicate callback cannot store a result twice.
            models.UniqueConstraint(fields=["edit", "position"], name="unique_result_position"),
        ]

    def __str__(self) -> str:
        return self.file.name


@receiver(post_delete, sender=Edit)
@receiver(post_delete, sender=InputImage)
@receiver(post_delete, sender=ResultImage)
def delete_stored_files(sender, instance, **kwargs) -> None:
    """A deleted row takes its files along, once the deletion is committed."""
    files = [
        getattr(instance, name, None)
        for name in ("file", "raw_file", "thumbnail", "preview", "mask", "pending_file")
    ]
    names = [file.name for file in files if file]

    def delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete)


class ShareLink(models.Model):
    """A capability URL for one edit's results: whoever has the link sees them, read-only.

    The token (256 random bits) is shown once, when the link is made; only its SHA-256 is kept,
    so the database alone cannot be used to open shared edits."""

    edit = models.ForeignKey(Edit, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    # The token's last characters, so its owner can tell links apart; 24 of 256 bits, harmless.
    token_end = models.CharField(max_length=4, blank=True)
    include_inputs = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Share link {self.pk} of edit {self.edit_id}"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        if self.revoked_at:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @classmethod
    def active(cls):
        now = timezone.now()
        return cls.objects.filter(revoked_at=None).filter(
            models.Q(expires_at=None) | models.Q(expires_at__gt=now)
        )

    def revoke(self) -> None:
        ShareLink.objects.filter(pk=self.pk, revoked_at=None).update(revoked_at=timezone.now())

    def count_view(self) -> None:
        ShareLink.objects.filter(pk=self.pk).update(views=models.F("views") + 1)


class ApiToken(models.Model):
    """A personal token for the JSON API (/api/v1/), sent as "Authorization: Bearer <token>".

    Like a share link's, the token (256 random bits) is shown once, when it is made; only its
    SHA-256 is kept, so the database alone cannot be used to call the API as anyone."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    token_hash = models.CharField(max_length=64, unique=True)
    # The token's last characters, so its owner can tell tokens apart.
    token_end = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"API token {self.name} (…{self.token_end})"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def revoke(self) -> None:
        ApiToken.objects.filter(pk=self.pk, revoked_at=None).update(revoked_at=timezone.now())


# --- Teams in the app: roles, invitations, review, activity, notifications (see teams.py) ------


class Membership(models.Model):
    """A person in a team, with their role. Owners manage the team; members see and review."""

    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role, default=Role.MEMBER)

    class Meta:
        # The table Team.members used before it had roles; its rows are the memberships.
        db_table = "edits_team_members"
        unique_together = [("team", "user")]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class Invitation(models.Model):
    """An invitation to join a team, by a link whose token is shown once to the inviter (only
    its SHA-256 is kept, as for ShareLink). It expires, and works once."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations_sent"
    )
    # Who it is for, as the inviter typed it (a username or an e-mail address).
    invitee_text = models.CharField(max_length=254)
    # The account it is for, when one matched: only that person may accept it.
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="invitations",
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # When it was accepted or declined; either way it cannot be used again.
    used_at = models.DateTimeField(null=True, blank=True)
    accepted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.invitee_text} to {self.team}"

    @property
    def is_open(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()

    def use(self, accepted: bool) -> bool:
        """Mark it used; False if it already was, or has expired (the first use wins)."""
        return bool(
            Invitation.objects.filter(
                pk=self.pk, used_at=None, expires_at__gt=timezone.now()
            ).update(used_at=timezone.now(), accepted=accepted)
        )


class Review(models.Model):
    """Where an edit stands in review, and who put it there when."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"

    edit = models.OneToOneField(Edit, on_delete=models.CASCADE, related_name="review")
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Edit {self.edit_id}: {self.status}"


class Comment(models.Model):
    edit = models.ForeignKey(Edit, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments"
    )
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on edit {self.edit_id}"


class Activity(models.Model):
    """One thing that happened to an edit, for the team feed: it was shared, commented on, or
    its review status changed. The feed shows only what its reader can still see."""

    class Kind(models.TextChoices):
        SHARED = "shared"
        COMMENTED = "commented"
        STATUS = "status"

    edit = models.ForeignKey(Edit, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activities"
    )
    kind = models.CharField(max_length=10, choices=Kind)
    # What changed, in words: the comment's start, the new status.
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["edit", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.actor} {self.kind} edit {self.edit_id}"


class Notification(models.Model):
    """Something for one person to look at: an invitation, a mention."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["recipient"], condition=models.Q(read_at=None), name="notification_unread"
            )
        ]

    def __str__(self) -> str:
        return f"To {self.recipient}: {self.text}"


class Batch(models.Model):
    """Edits made in one go: one instruction over many images ("batch"), or one image and
    instruction over several models ("compare"). Each is an Edit of its own that points here;
    its edits are created held (queued, never enqueued) and released a few at a time by
    batches.release, so that a batch never sends all of its requests at once."""

    class Kind(models.TextChoices):
        BATCH = "batch", "Batch"
        COMPARE = "compare", "Comparison"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches"
    )
    kind = models.CharField(max_length=10, choices=Kind)
    prompt = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # A comparison's pick: the edit whose result won.
    chosen_edit = models.ForeignKey(
        Edit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}"

    def get_absolute_url(self) -> str:
        name = "compare-detail" if self.kind == self.Kind.COMPARE else "batch-detail"
        return reverse(name, args=[self.pk])

    def held(self) -> models.QuerySet:
        """Its edits not yet released to the queue (their images ready)."""
        return self.edits.filter(status=Status.QUEUED, enqueued_at=None)

    def preparing(self) -> models.QuerySet:
        """Its edits whose image is still being read, never released until it is."""
        return self.edits.filter(PREPARING, status=Status.QUEUED)
