import hashlib
import hmac
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from . import catalog


def storage_name(kind: str, extension: str) -> str:
    """A server-generated name for a stored image: never anything the user sent.

    Images are stored by services (already re-encoded), never uploaded through a model form."""
    return f"{kind}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


class Edit(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edits"
    )
    prompt = models.TextField()
    model = models.CharField(max_length=40, choices=[(name, name) for name in catalog.MODELS])
    size = models.CharField(max_length=20, blank=True, help_text="Empty means the model decides.")

    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)

    upstream_task_id = models.CharField(max_length=100, blank=True)
    upstream_trace_id = models.CharField(max_length=100, blank=True)
    # The upstream's own timing in seconds, when it reports one.
    upstream_elapsed = models.FloatField(null=True, blank=True)
    # SHA-256 of the secret carried by this edit's callback URL; the secret itself is not kept.
    callback_secret_hash = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"Edit {self.pk} ({self.model}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("edit-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def image_model(self) -> catalog.ImageModel:
        return catalog.MODELS[self.model]

    @property
    def duration(self) -> float | None:
        """Seconds from the worker picking the edit up to its end."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    # State changes are conditional updates, so that a repeated task or a late callback cannot
    # move an edit that has already moved on. Each returns True if this call made the change.

    def _transition(self, allowed: tuple[str, ...], **changes) -> bool:
        updated = Edit.objects.filter(pk=self.pk, status__in=allowed).update(**changes)
        if updated:
            for field, value in changes.items():
                setattr(self, field, value)
        return bool(updated)

    def mark_running(self) -> bool:
        return self._transition(
            (self.Status.QUEUED,), status=self.Status.RUNNING, started_at=timezone.now()
        )

    def mark_submitted(self, task_id: str, trace_id: str) -> bool:
        """The upstream accepted the edit and will call back."""
        return self._transition(
            (self.Status.RUNNING,),
            upstream_task_id=task_id,
            upstream_trace_id=trace_id,
            submitted_at=timezone.now(),
        )

    def mark_succeeded(self, task_id: str, trace_id: str, elapsed: float | None) -> bool:
        return self._transition(
            self.ACTIVE,
            status=self.Status.SUCCEEDED,
            upstream_task_id=task_id or self.upstream_task_id,
            upstream_trace_id=trace_id or self.upstream_trace_id,
            upstream_elapsed=elapsed,
            finished_at=timezone.now(),
        )

    def mark_failed(self, code: str, message: str, trace_id: str = "") -> bool:
        return self._transition(
            self.ACTIVE,
            status=self.Status.FAILED,
            error_code=code,
            error_message=message,
            upstream_trace_id=trace_id or self.upstream_trace_id,
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
    position = models.PositiveSmallIntegerField()
    file = models.FileField()
    thumbnail = models.FileField()
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


@receiver(post_delete, sender=InputImage)
@receiver(post_delete, sender=ResultImage)
def delete_stored_files(sender, instance, **kwargs) -> None:
    """A deleted row takes its files along, once the deletion is committed."""
    names = [field.name for field in (instance.file, getattr(instance, "thumbnail", None)) if field]

    def delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete)
