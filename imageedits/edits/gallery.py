"""The history gallery's filters: by model, status, date and words of the instruction."""

from django import forms
from django.db.models import F, Prefetch, QuerySet

from . import catalog
from .models import Collection, Edit, ResultImage

# A page holds as many edits as the page-weight target is set for (issue 14: 48 under 1.5 MB).
PAGE_SIZE = 48


class GalleryFilter(forms.Form):
    q = forms.CharField(
        label="Search instructions",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "data-search-as-you-type": "", "placeholder": "Search"}
        ),
    )
    model = forms.ChoiceField(
        label="Model",
        required=False,
        choices=[("", "All models"), *((name, name) for name in catalog.MODELS)],
    )
    # Shown as a row of chips: one radio button each.
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "All"), *Edit.Status.choices],
        widget=forms.RadioSelect,
    )
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    starred = forms.BooleanField(label="Starred only", required=False)
    collection = forms.ModelChoiceField(
        label="Collection",
        required=False,
        queryset=Collection.objects.none(),
        empty_label="All collections",
    )

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["collection"].queryset = (
            Collection.objects.filter(owner=owner) if owner else Collection.objects.none()
        )

    def apply(self, edits: QuerySet[Edit]) -> QuerySet[Edit]:
        """The edits that pass the filters, newest first, with what a card shows."""
        if self.is_valid():
            data = self.cleaned_data
            if data["q"]:
                for word in data["q"].split():
                    edits = edits.filter(prompt__icontains=word)
            if data["model"]:
                edits = edits.filter(model=data["model"])
            if data["status"]:
                edits = edits.filter(status=data["status"])
            if data["since"]:
                edits = edits.filter(created_at__date__gte=data["since"])
            if data["until"]:
                edits = edits.filter(created_at__date__lte=data["until"])
            if data["starred"]:
                edits = edits.filter(starred=True)
            if data["collection"]:
                edits = edits.filter(collections=data["collection"])
        # A card shows only the chosen result's size, and none of the parameters (JSON, decoded
        # row by row).
        chosen_results = ResultImage.objects.filter(position=F("edit__chosen_position")).only(
            "edit_id", "position", "width", "height"
        )
        return (
            edits.order_by("-created_at", "-id")
            .defer("params")
            .prefetch_related(
                Prefetch("results", queryset=chosen_results, to_attr="chosen_results")
            )
        )

    @property
    def is_filtered(self) -> bool:
        return self.is_valid() and any(self.cleaned_data.values())
