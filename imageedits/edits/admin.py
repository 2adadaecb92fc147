from django.contrib import admin

from .models import Edit, InputImage, ResultImage


class InputImageInline(admin.TabularInline):
    model = InputImage
    extra = 0
    fields = ["position", "file", "url", "width", "height"]
    readonly_fields = fields


class ResultImageInline(admin.TabularInline):
    model = ResultImage
    extra = 0
    fields = ["position", "file", "thumbnail", "width", "height", "revised_prompt"]
    readonly_fields = fields


@admin.register(Edit)
class EditAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "model", "size", "status", "created_at", "finished_at"]
    list_filter = ["status", "model"]
    search_fields = ["prompt", "owner__username", "upstream_task_id", "upstream_trace_id"]
    list_select_related = ["owner"]
    readonly_fields = [
        "status",
        "error_code",
        "error_message",
        "upstream_task_id",
        "upstream_trace_id",
        "upstream_elapsed",
        "created_at",
        "started_at",
        "submitted_at",
        "finished_at",
    ]
    exclude = ["callback_secret_hash"]
    inlines = [InputImageInline, ResultImageInline]
