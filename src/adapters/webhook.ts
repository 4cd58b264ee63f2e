/** A non-2xx answer; the sink retries it like a network error. */
export class WebhookRejected extends Error {
  override readonly name = 'WebhookRejected';
  constructor(readonly status: number) {
    super(`webhook answered HTTP ${status}`);
  }
}

/** One JSON POST, bounded by `timeoutMs` from start to the end of the response. */
export async function postWebhook(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'dockwarden', ...headers },
    body,
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.arrayBuffer(); // read to the end so the connection can be reused
  if (response.status < 200 || response.status > 299) throw new WebhookRejected(response.status);
}
