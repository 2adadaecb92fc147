from django.contrib import admin

from .models import Edit, InputImage, ResultImage, Submission


class InputImageInline(admin.TabularInline):
    model = InputImage
    extra = 0
    fields = ["position", "file", "url", "width", "height"]
    readonly_fields = fields


class SubmissionInline(admin.TabularInline):
    model = Submission
    extra = 0
    fields = ["index", "n", "status", "error_code", "task_id", "trace_id", "elapsed", "finished_at"]
    readonly_fields = fields


class ResultImageInline(admin.TabularInline):
    model = ResultImage
    extra = 0
    fields = ["position", "file", "raw_file", "thumbnail", "width", "height", "revised_prompt"]
    readonly_fields = fields


@admin.register(Edit)
class EditAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "model", "size", "candidates", "status", "created_at"]
    list_filter = ["status", "model"]
    search_fields = ["prompt", "owner__username", "submissions__task_id", "submissions__trace_id"]
    list_select_related = ["owner"]
    readonly_fields = [
        "status", "error_code", "error_message", "credits", "created_at", "started_at",
        "finished_at",
    ]  # fmt: skip
    inlines = [InputImageInline, SubmissionInline, ResultImageInline]
