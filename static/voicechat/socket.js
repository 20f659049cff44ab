// A small JSON-over-WebSocket client for the server's realtime bridge, and a
// wrapper that reconnects after the connection is lost.

const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** ws: or wss: URL for a path on this site, following the page's own protocol. */
export function socketUrl(path, loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const clean = path.startsWith('/') ? path : `/${path}`;
  return `${scheme}//${loc.host}${clean}`;
}

/** `path` with ?conversation=<id> set (kept as it is when there is no id). */
export function withConversation(path, conversationId) {
  if (conversationId === null || conversationId === undefined || conversationId === '') return path;
  const [base, query = ''] = path.split('?', 2);
  const params = new URLSearchParams(query);
  params.set('conversation', String(conversationId));
  return `${base}?${params}`;
}

export const RECONNECT_TRIES = 5;
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 4000;

/**
 * How long to wait before reconnect attempt `attempt` (0 for the first): doubling
 * from 0.5 s up to 4 s, so a server restart is caught quickly without hammering
 * a server that stays down; null once `tries` attempts have been made.
 */
export function reconnectDelay(attempt, { tries = RECONNECT_TRIES, baseMs = RECONNECT_BASE_MS, maxMs = RECONNECT_MAX_MS } = {}) {
  if (!Number.isInteger(attempt) || attempt < 0 || attempt >= tries) return null;
  return Math.min(baseMs * 2 ** attempt, maxMs);
}

/**
 * Whether a close should be followed by a reconnect: not when the user asked for
 * it, not for 4000-4999, the codes the server closes with after a fatal error or
 * a limit (it has said why in an `error` event; trying again would fail the same
 * way), and not for 1008, a socket closed for abuse. A server restart (4012 from
 * the app, 1012 from uvicorn itself) is followed by one: the conversation goes on.
 */
export function shouldReconnect({ code, userClosed = false }) {
  if (userClosed || code === 1008) return false;
  if (code === 4012) return true;
  return !(code >= 4000 && code <= 4999);
}

export class RealtimeSocket {
  /**
   * @param {object} callbacks
   * @param {(event: object) => void} callbacks.onEvent each JSON event received
   * @param {() => void} [callbacks.onOpen]
   * @param {(info: {code: number, reason: string, wasClean: boolean, opened: boolean}) => void} [callbacks.onClose]
   * @param {typeof WebSocket} [callbacks.WebSocket] the WebSocket class (tests pass a fake)
   */
  constructor({ onEvent, onOpen = null, onClose = null, WebSocket: Impl = globalThis.WebSocket } = {}) {
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.Impl = Impl;
    this.ws = null;
    this.opened = false;
  }

  /** Open the socket to `path` (e.g. "/ws/realtime/") on this site, or to a full ws(s):// URL. */
  connect(path) {
    if (this.ws) throw new Error('already connected');
    const url = /^wss?:\/\//.test(path) ? path : socketUrl(path);
    const ws = new this.Impl(url);
    this.ws = ws;
    this.opened = false;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.opened = true;
      this.onOpen?.();
    });
    ws.addEventListener('message', (message) => {
      if (this.ws !== ws || typeof message.data !== 'string') return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not JSON: nothing we could do with it
      }
      if (event && typeof event.type === 'string') this.onEvent?.(event);
    });
    ws.addEventListener('close', (close) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const opened = this.opened;
      this.opened = false;
      this.onClose?.({ code: close.code, reason: close.reason, wasClean: close.wasClean, opened });
    });
    // 'error' is always followed by 'close', which carries what there is to know.
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === OPEN;
  }

  /** Bytes queued but not yet sent (to notice a slow link). */
  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  /** Send an event as JSON; false when the socket is not open. */
  send(event) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(event));
    return true;
  }

  /** Close the socket; onClose is not called for a close asked for here. */
  close(code = 1000, reason = '') {
    const ws = this.ws;
    this.ws = null;
    this.opened = false;
    if (ws && ws.readyState !== CLOSED && ws.readyState !== CLOSING) ws.close(code, reason);
  }
}

/**
 * A RealtimeSocket that opens again after a close nobody asked for, following
 * reconnectDelay(). The path is asked for at each attempt, so the page can add the
 * conversation id once it knows it. A first connection that never opened is not
 * retried (the server refused: most likely the user is logged out).
 */
export class ReconnectingSocket {
  /**
   * @param {object} options
   * @param {() => string} options.path the path (or URL) to open, asked at each attempt
   * @param {(event: object) => void} options.onEvent
   * @param {(info: {reconnect: boolean}) => void} [options.onOpen]
   * @param {(info: {code: number, delayMs: number, attempt: number}) => void} [options.onRetry]
   *   the connection was lost; attempt number `attempt` (from 1) starts in delayMs
   * @param {(info: {code: number, reason: string, opened: boolean, gaveUp: boolean}) => void} [options.onClose]
   *   closed for good (not called after close())
   * @param {(attempt: number) => number|null} [options.delay] the retry schedule
   * @param {typeof WebSocket} [options.WebSocket]
   */
  constructor({ path, onEvent, onOpen = null, onRetry = null, onClose = null, delay = reconnectDelay, WebSocket: Impl } = {}) {
    this.path = path;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onRetry = onRetry;
    this.onClose = onClose;
    this.delay = delay;
    this.Impl = Impl;
    this.socket = null;
    this.timer = null;
    this.attempt = 0;
    this.everOpened = false;
    this.stopped = true;
  }

  connect() {
    this.stopped = false;
    this.attempt = 0;
    this.everOpened = false;
    this.open();
  }

  open() {
    const options = { onEvent: (event) => this.onEvent?.(event) };
    if (this.Impl) options.WebSocket = this.Impl;
    const socket = new RealtimeSocket({
      ...options,
      onOpen: () => {
        const reconnect = this.everOpened;
        this.everOpened = true;
        this.onOpen?.({ reconnect });
      },
      onClose: (info) => this.closed(socket, info),
    });
    this.socket = socket;
    socket.connect(this.path());
  }

  closed(socket, info) {
    if (this.socket !== socket || this.stopped) return;
    this.socket = null;
    const retry = this.everOpened && shouldReconnect({ code: info.code });
    const delayMs = retry ? this.delay(this.attempt) : null;
    if (delayMs === null || delayMs === undefined) {
      this.stopped = true;
      this.onClose?.({ code: info.code, reason: info.reason, opened: info.opened, gaveUp: retry });
      return;
    }
    this.attempt++;
    this.onRetry?.({ code: info.code, delayMs, attempt: this.attempt });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, delayMs);
  }

  /** The session is good again: a later loss starts the schedule from the beginning. */
  settled() {
    this.attempt = 0;
  }

  get isOpen() {
    return this.socket?.isOpen ?? false;
  }

  /** True between a loss and the next successful open. */
  get reconnecting() {
    return !this.stopped && this.everOpened && !this.isOpen;
  }

  send(event) {
    return this.socket?.send(event) ?? false;
  }

  /** Close for good (the user asked): no reconnect, no onClose. */
  close() {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }
}
