"""Schemathesis against the API's own OpenAPI schema: for generated requests to every
operation, authenticated as a person with an edit, a result and a share link, the app never
answers 500, and every answer (status, content type, body) is one the schema documents."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imageedits.edits import api_tokens, images, services
from imageedits.edits.models import Batch

from .conftest import make_png, run_edit

CHECKS = (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
)


@pytest.fixture
def api_schema(db):
    """The schema, loaded from the app itself, whose requests are then made through WSGI in
    this thread, inside the test's transaction. As Django's test client does, the database
    connection is kept open between requests (each request's end would close it)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def alices_rows(alice) -> dict:
    """Alice's real edit, its first result and a share link, for requests that find them."""
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit("blur", "gpt-image-2", "", [upload], []))
    run_edit(edit)
    link = edit.share_links.create(token_hash="0" * 64)
    batch = Batch.objects.create(owner=alice, kind=Batch.Kind.BATCH, prompt="blur")
    edit.batch = batch
    edit.save(update_fields=["batch"])
    return {"edit_id": edit.pk, "position": 0, "link_id": link.pk, "batch_id": batch.pk}


def test_the_api_conforms_to_its_schema(api_schema, alice, alices_rows, simulator):
    token = api_tokens.create(alice, "schemathesis")[1]
    new_edit = {"prompt": "blur", "image_urls": [f"{simulator.url}/samples/square.png"]}
    answered: set[int] = set()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 9
    for operation in operations:
        # Generated ids are almost never real: half the cases are about alice's own rows.
        names = {param.name for param in operation.path_parameters}
        real = {name: value for name, value in alices_rows.items() if name in names}
        strategies = [operation.as_strategy(), operation.as_strategy(path_parameters=real)]
        if operation.method == "post" and operation.path == "/api/v1/edits/":
            # and a valid edit, which then runs
            strategies.append(operation.as_strategy(body=new_edit, media_type="application/json"))
        if operation.method == "post" and operation.path == "/api/v1/batches/":
            strategies.append(operation.as_strategy(body=new_edit, media_type="application/json"))

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=20,
            deadline=None,
            derandomize=True,  # the same requests on every run: a failure is reproducible
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def conforms(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=CHECKS)
            answered.add(response.status_code)

        conforms()
    assert answered >= {200, 201, 204, 400, 404}  # the real rows were met, not only 404s
