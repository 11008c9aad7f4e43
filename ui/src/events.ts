// GET /v1/events read with fetch, not EventSource: EventSource cannot send the Authorization
// header, and the admin token must never travel in a URL (logs, proxies, history). The
// parser follows the server-sent events format (event:, data:, retry:, comments); the
// stream reconnects by itself, and each new connection starts with a full snapshot.

export interface StreamHandlers {
  onEvent(name: string, data: unknown): void;
  onState(state: 'connecting' | 'live' | 'reconnecting', detail?: string): void;
  /** the controller refused the token: the stream stops */
  onUnauthorized(message: string): void;
}

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
/** The server sends a keepalive every 15 s; silence for this long means a dead connection. */
const SILENCE_LIMIT_MS = 40_000;

export function streamEvents(token: string, handlers: StreamHandlers): () => void {
  let stopped = false;
  let controller: AbortController | undefined;
  let retryMs = RECONNECT_MIN_MS;
  let serverRetryMs: number | undefined;

  async function connectOnce(): Promise<void> {
    controller = new AbortController();
    let silence: ReturnType<typeof setTimeout> | undefined;
    const feed = () => {
      clearTimeout(silence);
      silence = setTimeout(() => controller?.abort(), SILENCE_LIMIT_MS);
    };
    try {
      const response = await fetch('/v1/events', {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        cache: 'no-store',
        signal: controller.signal,
      });
      if (response.status === 401) {
        const body = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
        stopped = true;
        handlers.onUnauthorized(body?.error?.message ?? 'the controller refused the admin token');
        return;
      }
      if (!response.ok || !response.body) throw new Error(`the event stream answered ${response.status}`);
      feed();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let event = 'message';
      let data: string[] = [];
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed();
        buffer += value;
        let newline = buffer.search(/\r\n|\r|\n/);
        while (newline >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
          newline = buffer.search(/\r\n|\r|\n/);
          if (line === '') {
            if (data.length > 0) {
              const parsed = JSON.parse(data.join('\n')) as unknown;
              if (first) {
                first = false;
                retryMs = RECONNECT_MIN_MS;
                handlers.onState('live');
              }
              handlers.onEvent(event, parsed);
            }
            event = 'message';
            data = [];
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = text;
          else if (field === 'data') data.push(text);
          else if (field === 'retry' && /^\d+$/.test(text)) serverRetryMs = Number(text);
        }
      }
    } finally {
      clearTimeout(silence);
    }
  }

  async function run(): Promise<void> {
    handlers.onState('connecting');
    while (!stopped) {
      let detail = 'the stream ended';
      try {
        await connectOnce();
      } catch (error) {
        detail = (error as Error).name === 'AbortError' ? 'the stream went silent' : (error as Error).message;
      }
      if (stopped) return;
      const wait = Math.max(serverRetryMs ?? 0, retryMs) * (0.8 + Math.random() * 0.4);
      handlers.onState('reconnecting', `${detail}; reconnecting in ${Math.round(wait / 1000)} s`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
    }
  }

  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
