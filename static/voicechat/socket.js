// A small JSON-over-WebSocket client for the server's realtime bridge.

/** ws: or wss: URL for a path on this site, following the page's own protocol. */
export function socketUrl(path, loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const clean = path.startsWith('/') ? path : `/${path}`;
  return `${scheme}//${loc.host}${clean}`;
}

export class RealtimeSocket {
  /**
   * @param {object} callbacks
   * @param {(event: object) => void} callbacks.onEvent each JSON event received
   * @param {() => void} [callbacks.onOpen]
   * @param {(info: {code: number, reason: string, wasClean: boolean, opened: boolean}) => void} [callbacks.onClose]
   */
  constructor({ onEvent, onOpen = null, onClose = null } = {}) {
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.ws = null;
    this.opened = false;
  }

  /** Open the socket to `path` (e.g. "/ws/realtime/") on this site, or to a full ws(s):// URL. */
  connect(path) {
    if (this.ws) throw new Error('already connected');
    const url = /^wss?:\/\//.test(path) ? path : socketUrl(path);
    const ws = new WebSocket(url);
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
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
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
    if (ws && ws.readyState !== WebSocket.CLOSED && ws.readyState !== WebSocket.CLOSING) ws.close(code, reason);
  }
}
