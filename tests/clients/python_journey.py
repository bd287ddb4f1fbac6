"""A short journey through the Workhorse API using nothing but the client openapi-python-client
generated from the served spec (package `workhorse_client`, on PYTHONPATH).

Usage: python3 python_journey.py BASE_URL ADMIN_TOKEN

As the admin it creates a user and a token for them; as that user it runs an echo job, has a
document summarised, pages through its jobs, cancels a job and reads a problem+json error. Every
check is an assert (a failure exits non-zero with a traceback); at the end it prints what it saw
as one JSON object, which tests/daemon/clients checks again.
"""

import datetime
import json
import sys
import time
import uuid

from workhorse_client import AuthenticatedClient
from workhorse_client.api.documents import documents_create, summaries_create, summaries_get
from workhorse_client.api.jobs import jobs_cancel, jobs_create, jobs_get, jobs_list
from workhorse_client.api.tokens import tokens_create
from workhorse_client.api.users import users_create
from workhorse_client.models import (
    CreateDocument,
    CreateEchoJob,
    CreateEchoJobKind,
    CreateSummary,
    CreateToken,
    CreateUser,
    DocumentOut,
    EchoArgs,
    JobOut,
    JobPage,
    JobStateOut,
    NewTokenOut,
    Problem,
    Role,
    SummaryLength,
    SummaryOut,
    UserOut,
    WorkStatus,
)
from workhorse_client.types import UNSET, Response, Unset

# Each wait ends in a failure after this long; the jobs take well under a second.
DEADLINE_S = 30
TEXT = (
    "Workhorse runs jobs for its users. A job is enqueued through the API, claimed by a worker, "
    "and its outcome is stored with its attempts. Documents can be summarised: with no model "
    "provider configured, the built-in extractive summariser picks the sentences that say the "
    "most. Clients generated from the served OpenAPI document call every operation by name."
)


def expect(response: Response, status: int, model: type):
    """The parsed body of `response`, checking its status and its generated model."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    assert isinstance(response.parsed, model), (
        f"expected a {model.__name__}, got {type(response.parsed).__name__}"
    )
    return response.parsed


def poll(what: str, fetch, done):
    """Call `fetch` until `done` holds for its result, which is returned."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE_S}s, last {value!r}"
        time.sleep(0.1)


def enqueue_echo(client: AuthenticatedClient, **fields) -> JobOut:
    body = CreateEchoJob(kind=CreateEchoJobKind.ECHO, **fields)
    return expect(jobs_create.sync_detailed(client=client, body=body), 202, JobOut)


def get_job(client: AuthenticatedClient, job_id: uuid.UUID) -> JobOut:
    return expect(jobs_get.sync_detailed(job_id, client=client), 200, JobOut)


def run_echo(client: AuthenticatedClient, user: UserOut) -> dict:
    created = enqueue_echo(client, args=EchoArgs(sleep_ms=1, message="python"))
    job = poll(
        "the echo job succeeded",
        lambda: get_job(client, created.id),
        lambda j: j.state == JobStateOut.SUCCEEDED,
    )
    assert job.owner_id == user.id, job.owner_id
    assert job.result == {"attempt": 1, "message": "python"}, job.result
    assert isinstance(job.finished_at, datetime.datetime), job.finished_at
    return {"id": str(job.id), "state": job.state.value, "result": job.result}


def summarise(client: AuthenticatedClient) -> dict:
    body = CreateDocument(title="Journey", text=TEXT)
    document = expect(documents_create.sync_detailed(client=client, body=body), 201, DocumentOut)
    assert document.size == len(TEXT.encode()), document.size
    asked = CreateSummary(length=SummaryLength.SHORT)
    queued = expect(
        summaries_create.sync_detailed(document.id, client=client, body=asked), 202, SummaryOut
    )
    finished = {WorkStatus.SUCCEEDED, WorkStatus.FAILED, WorkStatus.CANCELLED}
    summary = poll(
        "the summary finished",
        lambda: expect(summaries_get.sync_detailed(queued.id, client=client), 200, SummaryOut),
        lambda s: s.status in finished,
    )
    assert summary.status == WorkStatus.SUCCEEDED, (summary.status, summary.error)
    assert summary.document_id == document.id
    assert isinstance(summary.text, str) and summary.text, summary.text
    return {
        "id": str(summary.id),
        "job_id": str(summary.job_id),
        "status": summary.status.value,
        "builtin": summary.builtin,
        "provider": summary.provider,
        "text_chars": len(summary.text),
    }


def list_all(client: AuthenticatedClient) -> tuple[list[str], int]:
    """Every job of the caller, two a page, following `next_cursor` to the end."""
    ids: list[str] = []
    pages = 0
    cursor: str | Unset = UNSET
    while True:
        page = expect(jobs_list.sync_detailed(client=client, limit=2, cursor=cursor), 200, JobPage)
        pages += 1
        assert len(page.items) <= 2, len(page.items)
        ids += [str(job.id) for job in page.items]
        if isinstance(page.next_cursor, Unset):
            return ids, pages
        cursor = page.next_cursor


def cancel_later_job(client: AuthenticatedClient) -> dict:
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    job = enqueue_echo(client, args=EchoArgs(sleep_ms=1), run_at=later)
    assert job.state == JobStateOut.SCHEDULED, job.state
    cancelled = expect(jobs_cancel.sync_detailed(job.id, client=client), 200, JobOut)
    assert cancelled.state == JobStateOut.CANCELLED, cancelled.state
    read = get_job(client, job.id)
    assert read.state == JobStateOut.CANCELLED, read.state
    return {"id": str(job.id), "state": read.state.value}


def read_problem(client: AuthenticatedClient) -> dict:
    response = jobs_get.sync_detailed(uuid.uuid4(), client=client)
    problem = expect(response, 404, Problem)
    assert problem.status == 404, problem.status
    assert problem.code == "not_found", problem.code
    assert problem.request_id == response.headers["x-request-id"], problem.request_id
    return {
        "status": problem.status,
        "code": problem.code,
        "request_id": problem.request_id,
        "content_type": response.headers["content-type"],
    }


def main(base_url: str, admin_token: str) -> dict:
    admin = AuthenticatedClient(base_url=base_url, token=admin_token)
    email = f"journey-{uuid.uuid4().hex[:12]}@example.com"
    user = expect(
        users_create.sync_detailed(client=admin, body=CreateUser(name="Journey", email=email)),
        201,
        UserOut,
    )
    assert user.role == Role.USER, user.role
    token = expect(
        tokens_create.sync_detailed(user.id, client=admin, body=CreateToken(name="journey")),
        201,
        NewTokenOut,
    )
    assert token.user_id == user.id, token.user_id
    client = AuthenticatedClient(base_url=base_url, token=token.token)

    echo = run_echo(client, user)
    summary = summarise(client)
    more = [str(enqueue_echo(client, args=EchoArgs(sleep_ms=1)).id) for _ in range(3)]
    listed, pages = list_all(client)
    created = [echo["id"], summary["job_id"], *more]
    assert len(listed) == len(set(listed)), f"a job listed twice: {listed}"
    assert sorted(listed) == sorted(created), (listed, created)
    cancelled = cancel_later_job(client)
    problem = read_problem(client)
    return {
        "user_id": str(user.id),
        "token_user_id": str(token.user_id),
        "echo": echo,
        "summary": summary,
        "list": {"created": created, "listed": listed, "pages": pages},
        "cancelled": cancelled,
        "problem": problem,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
