// The console's API client. Its types come from src/api.d.ts, which
// openapi-typescript generates from openapi.yaml (`npm run gen`), so a
// spec change that breaks a call here breaks `npm run check`.
import type { components, paths } from "./api";

export type Schemas = components["schemas"];

type Method = "get" | "post" | "patch" | "delete";

// The paths that have an operation for method M.
type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P] extends { [K in M]: object } ? P : never;
}[keyof paths];

type Op<P extends keyof paths, M extends Method> = paths[P][M];
type PathParams<O> = O extends { parameters: { path: infer X } } ? X : never;
type Query<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
type Body<O> = O extends { requestBody: { content: { "application/json": infer B } } }
  ? B
  : O extends { requestBody?: { content: { "application/json": infer B } } }
    ? B
    : never;
type JSONOf<R> = R extends { content: { "application/json": infer J } } ? J : undefined;
type Ok<O> = O extends { responses: infer R }
  ? 200 extends keyof R
    ? JSONOf<R[200]>
    : 201 extends keyof R
      ? JSONOf<R[201]>
      : 202 extends keyof R
        ? JSONOf<R[202]>
        : undefined
  : never;

export interface Options<O> {
  path?: PathParams<O>;
  query?: Query<O>;
  body?: Body<O>;
}

// ApiError is a refused request, with the API's own code and message.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const keyName = "hookd.apiKey";

// The API key lives in session storage only: gone when the tab closes or
// the user signs out, never in a URL or local storage.
export const session = {
  key: (): string | null => sessionStorage.getItem(keyName),
  signIn: (key: string) => sessionStorage.setItem(keyName, key),
  signOut: () => sessionStorage.removeItem(keyName),
};

// onUnauthorized is called when the API refuses the stored key.
export let onUnauthorized = (): void => {};
export function setOnUnauthorized(f: () => void) {
  onUnauthorized = f;
}

// url fills a path template and appends the query (undefined and empty
// values left out).
export function url(template: string, path?: object, query?: object): string {
  let u = template.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(String((path as Record<string, unknown> | undefined)?.[name] ?? "")),
  );
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  const qs = q.toString();
  if (qs) u += "?" + qs;
  return u;
}

// raw sends one request with the signed-in key and returns the response,
// throwing ApiError for any answer other than 2xx.
export async function raw(method: string, u: string, body?: unknown, key = session.key()): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (key) headers["Authorization"] = "Bearer " + key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(u, { method: method.toUpperCase(), headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "NETWORK", "hookd did not answer: " + (e instanceof Error ? e.message : String(e)));
  }
  if (res.ok) return res;
  let code = "HTTP_" + res.status;
  let message = res.statusText || "request failed";
  try {
    const env = (await res.json()) as { error?: { code?: string; message?: string } };
    if (env.error?.code) code = env.error.code;
    if (env.error?.message) message = env.error.message;
  } catch {
    // not the API's envelope: keep the status line
  }
  if (res.status === 401 && key === session.key()) onUnauthorized();
  throw new ApiError(res.status, code, message);
}

// api calls one operation of the spec, typed by its path and method.
export async function api<M extends Method, P extends PathsWith<M>>(
  method: M,
  path: P,
  opts: Options<Op<P, M>> = {},
): Promise<Ok<Op<P, M>>> {
  const res = await raw(method, url(path as string, opts.path as object, opts.query as object), opts.body);
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as Ok<Op<P, M>>;
}
