// A short journey through the Workhorse API with openapi-fetch, typed by the `paths` that
// openapi-typescript generated from the served spec (schema.d.ts, written beside this file by
// tests/daemon/clients).
//
// Usage: node out/journey.js BASE_URL ADMIN_TOKEN
//
// As the admin it creates a user and a token for them; as that user it runs an echo job, has a
// document summarised, pages through its jobs, cancels a job and reads a problem+json error.
// Every check throws on failure (node exits non-zero); at the end it prints what it saw as one
// JSON object, which the Rust test checks again. The Python journey (../python_journey.py)
// walks the same way and prints the same shape.

import { randomUUID } from "node:crypto";

import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
type Client = ReturnType<typeof createClient<paths>>;

/** Each wait ends in a failure after this long; the jobs take well under a second. */
const DEADLINE_MS = 30_000;
const TEXT =
  "Workhorse runs jobs for its users. A job is enqueued through the API, claimed by a worker, " +
  "and its outcome is stored with its attempts. Documents can be summarised: with no model " +
  "provider configured, the built-in extractive summariser picks the sentences that say the " +
  "most. Clients generated from the served OpenAPI document call every operation by name.";

function check(condition: boolean, what: string, seen?: unknown): asserts condition {
  if (!condition) {
    throw new Error(`${what}${seen === undefined ? "" : `: ${JSON.stringify(seen)}`}`);
  }
}

/** What every openapi-fetch call resolves to: its data, or its typed error. */
interface Answer<T, E> {
  data?: T;
  error?: E;
  response: Response;
}

/** The data of `answer`, checking the status it came with. */
function expect<T, E>(answer: Answer<T, E>, status: number): T {
  const { data, error, response } = answer;
  check(
    response.status === status && data !== undefined,
    `expected ${status} from ${response.url}, got ${response.status}`,
    error,
  );
  return data;
}

/** The typed problem of `answer`, checking its status. */
function expectProblem<T, E>(answer: Answer<T, E>, status: number): E {
  const { error, response } = answer;
  check(response.status === status && error !== undefined, `expected ${status}`, response.status);
  return error;
}

async function poll<T>(what: string, fetch: () => Promise<T>, done: (t: T) => boolean): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await fetch();
    if (done(value)) {
      return value;
    }
    check(Date.now() < deadline, `${what}: not within ${DEADLINE_MS} ms`, value);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function clientFor(baseUrl: string, token: string): Client {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

async function enqueueEcho(client: Client, body: Omit<Schemas["CreateEchoJob"], "kind">) {
  const job: Schemas["JobOut"] = expect(
    await client.POST("/v1/jobs", { body: { kind: "echo", ...body } }),
    202,
  );
  return job;
}

async function getJob(client: Client, id: string): Promise<Schemas["JobOut"]> {
  return expect(await client.GET("/v1/jobs/{id}", { params: { path: { id } } }), 200);
}

async function runEcho(client: Client, user: Schemas["UserOut"]) {
  const created = await enqueueEcho(client, { args: { sleep_ms: 1, message: "typescript" } });
  const job = await poll(
    "the echo job succeeded",
    () => getJob(client, created.id),
    (j) => j.state === "succeeded",
  );
  check(job.owner_id === user.id, "the job's owner", job.owner_id);
  const result = JSON.stringify(job.result);
  check(result === JSON.stringify({ attempt: 1, message: "typescript" }), "its result", result);
  check(job.finished_at !== undefined && !isNaN(Date.parse(job.finished_at)), "finished_at");
  const state: Schemas["JobStateOut"] = job.state;
  return { id: job.id, state, result: job.result };
}

async function summarise(client: Client) {
  const document: Schemas["DocumentOut"] = expect(
    await client.POST("/v1/documents", { body: { title: "Journey", text: TEXT } }),
    201,
  );
  check(document.size === new TextEncoder().encode(TEXT).length, "the size", document.size);
  const queued: Schemas["SummaryOut"] = expect(
    await client.POST("/v1/documents/{id}/summaries", {
      params: { path: { id: document.id } },
      body: { length: "short" },
    }),
    202,
  );
  const finished: Schemas["WorkStatus"][] = ["succeeded", "failed", "cancelled"];
  const summary = await poll(
    "the summary finished",
    async () =>
      expect(await client.GET("/v1/summaries/{id}", { params: { path: { id: queued.id } } }), 200),
    (s) => finished.includes(s.status),
  );
  check(summary.status === "succeeded", "the summary succeeded", summary.error);
  check(summary.document_id === document.id, "the summary's document");
  check(summary.text !== undefined && summary.text.length > 0, "the summary's text");
  return {
    id: summary.id,
    job_id: summary.job_id,
    status: summary.status,
    builtin: summary.builtin,
    provider: summary.provider,
    text_chars: [...summary.text].length,
  };
}

/** Every job of the caller, two a page, following `next_cursor` to the end. */
async function listAll(client: Client): Promise<{ listed: string[]; pages: number }> {
  const listed: string[] = [];
  let pages = 0;
  let cursor: string | undefined;
  for (;;) {
    const query = cursor === undefined ? { limit: 2 } : { limit: 2, cursor };
    const answer = await client.GET("/v1/jobs", { params: { query } });
    const page: Schemas["JobPage"] = expect(answer, 200);
    pages += 1;
    check(page.items.length <= 2, "a page of at most 2", page.items.length);
    listed.push(...page.items.map((job) => job.id));
    if (page.next_cursor === undefined) {
      return { listed, pages };
    }
    cursor = page.next_cursor;
  }
}

async function cancelLaterJob(client: Client) {
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const job = await enqueueEcho(client, { args: { sleep_ms: 1 }, run_at: later });
  check(job.state === "scheduled", "a job due later is scheduled", job.state);
  const cancelled: Schemas["JobOut"] = expect(
    await client.POST("/v1/jobs/{id}/cancel", { params: { path: { id: job.id } } }),
    200,
  );
  check(cancelled.state === "cancelled", "the cancel's answer", cancelled.state);
  const read = await getJob(client, job.id);
  check(read.state === "cancelled", "the job read back", read.state);
  return { id: job.id, state: read.state };
}

async function readProblem(client: Client) {
  const answer = await client.GET("/v1/jobs/{id}", { params: { path: { id: randomUUID() } } });
  const problem: Schemas["Problem"] = expectProblem(answer, 404);
  check(problem.status === 404, "the problem's status", problem.status);
  check(problem.code === "not_found", "the problem's code", problem.code);
  const header = answer.response.headers.get("x-request-id");
  check(problem.request_id === header, "the problem's request_id", [problem.request_id, header]);
  return {
    status: problem.status,
    code: problem.code,
    request_id: problem.request_id,
    content_type: answer.response.headers.get("content-type"),
  };
}

async function main(baseUrl: string, adminToken: string) {
  const admin = clientFor(baseUrl, adminToken);
  const email = `journey-${randomUUID().slice(0, 12)}@example.com`;
  const user: Schemas["UserOut"] = expect(
    await admin.POST("/v1/users", { body: { name: "Journey", email } }),
    201,
  );
  check(user.role === "user", "the new user's role", user.role);
  const token: Schemas["NewTokenOut"] = expect(
    await admin.POST("/v1/users/{id}/tokens", {
      params: { path: { id: user.id } },
      body: { name: "journey" },
    }),
    201,
  );
  check(token.user_id === user.id, "the token's user", token.user_id);
  const client = clientFor(baseUrl, token.token);

  const echo = await runEcho(client, user);
  const summary = await summarise(client);
  const more: string[] = [];
  for (let i = 0; i < 3; i += 1) {
    more.push((await enqueueEcho(client, { args: { sleep_ms: 1 } })).id);
  }
  const { listed, pages } = await listAll(client);
  const created = [echo.id, summary.job_id, ...more];
  check(new Set(listed).size === listed.length, "no job listed twice", listed);
  check(
    JSON.stringify([...listed].sort()) === JSON.stringify([...created].sort()),
    "the listed jobs are the created ones",
    { listed, created },
  );
  const cancelled = await cancelLaterJob(client);
  const problem = await readProblem(client);
  return {
    user_id: user.id,
    token_user_id: token.user_id,
    echo,
    summary,
    list: { created, listed, pages },
    cancelled,
    problem,
  };
}

/**
 * Never called: each line must fail to compile. Were a generated type loosened (a path that
 * takes any parameters, a body without required fields, an enum widened to string), the
 * directive would be unused, which is itself an error.
 */
export async function typesStayStrict(client: Client): Promise<void> {
  // @ts-expect-error the path parameter `id` is required
  await client.GET("/v1/jobs/{id}", {});
  // @ts-expect-error CreateJob requires `kind`
  await client.POST("/v1/jobs", { body: { args: {} } });
  // @ts-expect-error an echo job's args have no `scrape_id`
  await client.POST("/v1/jobs", { body: { kind: "echo", args: { scrape_id: "x" } } });
  // @ts-expect-error `limit` is an integer
  await client.GET("/v1/jobs", { params: { query: { limit: "2" } } });
  // @ts-expect-error not a state a job can be in
  const state: Schemas["JobStateOut"] = "finished";
  // @ts-expect-error no such operation
  await client.GET("/v1/nowhere", {});
  void state;
}

const [baseUrl, adminToken] = process.argv.slice(2);
check(baseUrl !== undefined && adminToken !== undefined, "usage: journey.js BASE_URL ADMIN_TOKEN");
console.log(JSON.stringify(await main(baseUrl, adminToken)));
