from django.contrib import admin

from .models import (
    ApiToken,
    Batch,
    Collection,
    Edit,
    InputImage,
    Membership,
    PersonBudget,
    ResultImage,
    ShareLink,
    Submission,
    Team,
)


class InputImageInline(admin.TabularInline):
    model = InputImage
    extra = 0
    fields = ["position", "file", "preview", "url", "width", "height"]
    readonly_fields = fields


class SubmissionInline(admin.TabularInline):
    model = Submission
    extra = 0
    fields = ["index", "n", "status", "error_code", "task_id", "trace_id", "elapsed", "finished_at"]
    readonly_fields = fields


class ResultImageInline(admin.TabularInline):
    model = ResultImage
    extra = 0
    fields = [
        "position",
        "file",
        "raw_file",
        "thumbnail",
        "preview",
        "width",
        "height",
        "revised_prompt",
    ]
    readonly_fields = fields


@admin.register(Edit)
class EditAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "model", "size", "candidates", "status", "created_at"]
    list_filter = ["status", "model"]
    search_fields = ["prompt", "owner__username", "submissions__task_id", "submissions__trace_id"]
    list_select_related = ["owner"]
    readonly_fields = [
        "status", "error_code", "error_message", "credits", "billed_credits", "created_at",
        "started_at", "finished_at", "parent", "chosen_position",
    ]  # fmt: skip
    exclude = ["collections"]
    inlines = [InputImageInline, SubmissionInline, ResultImageInline]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected edits under way")
    def cancel(self, request, queryset) -> None:
        cancelled = sum(edit.cancel() for edit in queryset.filter(status__in=Edit.ACTIVE))
        self.message_user(request, f"{cancelled} edit(s) cancelled.")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "monthly_budget"]
    search_fields = ["name", "members__username"]
    inlines = [MembershipInline]


@admin.register(PersonBudget)
class PersonBudgetAdmin(admin.ModelAdmin):
    list_display = ["person", "monthly_budget"]
    search_fields = ["person__username"]
    autocomplete_fields = ["person"]
    list_select_related = ["person"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ["edit", "created_at", "expires_at", "revoked_at", "views", "include_inputs"]
    readonly_fields = ["edit", "token_hash", "created_at", "views"]
    list_select_related = ["edit"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by their owner, who alone sees them once; an admin can only revoke."""

    list_display = ["name", "owner", "token_end", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    readonly_fields = list_display
    list_select_related = ["owner"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset:
            token.revoke()


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "owner", "prompt", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["owner", "chosen_edit"]
