// The transcript pane and the status line. Received text only ever goes into
// textContent.
//
// Bubbles are keyed by realtime item id and placed in conversation order, which
// the service gives with `previous_item_id` (on input_audio_buffer.committed and
// conversation.item.created (preview) / conversation.item.added (GA)), not in
// the order events arrive: a user transcript that is ready only after the reply
// has started still shows above that reply.

const ROLE_LABEL = { user: 'You', assistant: 'Assistant' };

const ASSISTANT_DELTA = new Set([
  'response.output_audio_transcript.delta', // GA
  'response.audio_transcript.delta', // preview
  'response.output_text.delta', // GA
  'response.text.delta', // preview
]);
const ASSISTANT_DONE = new Set([
  'response.output_audio_transcript.done',
  'response.audio_transcript.done',
  'response.output_text.done',
  'response.text.done',
]);

/** "interrupted after 2.3 s heard" */
export function interruptedNote(heardMs) {
  if (heardMs === null || heardMs === undefined || !Number.isFinite(heardMs)) return 'interrupted';
  return `interrupted after ${(heardMs / 1000).toFixed(1)} s heard`;
}

/** The text of a message item's content parts (transcripts or text), or ''. */
function contentText(item) {
  if (!item || !Array.isArray(item.content)) return '';
  let text = '';
  for (const part of item.content) {
    if (!part) continue;
    if (typeof part.transcript === 'string') text += part.transcript;
    else if (typeof part.text === 'string') text += part.text;
  }
  return text;
}

export class Transcript {
  /** @param {HTMLElement} pane the element holding the bubbles */
  constructor(pane) {
    this.pane = pane;
    this.order = []; // every item id seen, displayed or not, in conversation order
    this.items = new Map(); // id -> {id, role, el, textEl, noteEl, placed, status, heardMs}
  }

  reset() {
    this.order = [];
    this.items.clear();
    this.pane.replaceChildren();
  }

  get size() {
    return this.pane.querySelectorAll('.turn').length;
  }

  entry(id) {
    let e = this.items.get(id);
    if (!e) {
      e = { id, role: null, el: null, textEl: null, noteEl: null, placed: false, status: 'streaming', heardMs: null };
      this.items.set(id, e);
    }
    return e;
  }

  /**
   * Record where item `id` sits: right after `previousId` when that is known
   * (null: first of the conversation; undefined: not said, keep it where it is
   * or put it last). `role` is 'user' or 'assistant' for a bubble, null for an
   * item that is not shown (function calls and the like).
   */
  place(id, previousId, role = null) {
    if (!id) return null;
    const e = this.entry(id);
    if (role && !e.role) e.role = role;
    const index = this.order.indexOf(id);
    if (previousId !== undefined && !e.placed) {
      if (index >= 0) this.order.splice(index, 1);
      if (previousId === null) {
        this.order.unshift(id);
      } else {
        const p = this.order.indexOf(previousId);
        if (p >= 0) this.order.splice(p + 1, 0, id);
        else this.order.push(id);
      }
      e.placed = true;
      if (e.el) this.attach(e); // moved: put its bubble where it now belongs
    } else if (index < 0) {
      this.order.push(id);
    }
    if (e.role && !e.el) this.createBubble(e);
    return e;
  }

  /** The bubble for an item, made (at the end) if the item is new. */
  bubble(id, role) {
    const e = this.items.get(id);
    if (e && e.el) return e;
    return this.place(id, undefined, role);
  }

  createBubble(e) {
    const el = document.createElement('div');
    el.className = `turn turn-${e.role}`;
    el.dataset.itemId = e.id;
    el.dataset.status = e.status;
    const meta = document.createElement('div');
    meta.className = 'turn-meta';
    const who = document.createElement('span');
    who.className = 'turn-role';
    who.textContent = ROLE_LABEL[e.role] ?? e.role;
    const note = document.createElement('span');
    note.className = 'turn-note';
    meta.append(who, note);
    const text = document.createElement('p');
    text.className = 'turn-text';
    el.append(meta, text);
    e.el = el;
    e.textEl = text;
    e.noteEl = note;
    this.attach(e);
  }

  /** Put a bubble after the bubble of the nearest earlier item that has one. */
  attach(e) {
    const follow = this.isNearBottom();
    const index = this.order.indexOf(e.id);
    let before = null;
    for (let k = index - 1; k >= 0; k--) {
      const prev = this.items.get(this.order[k]);
      if (prev && prev.el && prev.el.parentNode === this.pane) {
        before = prev.el;
        break;
      }
    }
    if (before) before.after(e.el);
    else this.pane.prepend(e.el);
    if (follow) this.scrollToEnd();
  }

  isNearBottom() {
    const p = this.pane;
    return p.scrollHeight - p.scrollTop - p.clientHeight < 48;
  }

  scrollToEnd() {
    this.pane.scrollTop = this.pane.scrollHeight;
  }

  append(id, role, delta) {
    if (typeof delta !== 'string' || delta === '') return;
    const e = this.bubble(id, role);
    if (!e) return;
    const follow = this.isNearBottom();
    e.textEl.append(delta); // a text node: never parsed as HTML
    if (follow) this.scrollToEnd();
  }

  setText(id, role, text) {
    if (typeof text !== 'string') return;
    const e = this.bubble(id, role);
    if (!e) return;
    e.textEl.textContent = text;
    e.el.classList.toggle('turn-empty', text.trim() === '');
  }

  text(id) {
    return this.items.get(id)?.textEl?.textContent ?? '';
  }

  status(id) {
    return this.items.get(id)?.status ?? null;
  }

  setStatus(id, status, note = null) {
    const e = this.items.get(id);
    if (!e) return;
    e.status = status;
    if (e.el) {
      e.el.dataset.status = status;
      if (note !== null) e.noteEl.textContent = note;
    }
  }

  /** Mark the item's bubble as cut short after `heardMs` milliseconds were heard. */
  markInterrupted(id, heardMs = null) {
    const e = this.items.get(id);
    if (!e) return;
    if (heardMs !== null && heardMs !== undefined) e.heardMs = heardMs;
    this.setStatus(id, 'interrupted', interruptedNote(e.heardMs));
  }

  markFailed(id, role, detail = '') {
    const e = this.bubble(id, role);
    if (!e) return;
    this.setStatus(id, 'failed', role === 'user' ? '(transcription failed)' : '(failed)');
    if (detail) {
      let d = e.el.querySelector('.turn-detail');
      if (!d) {
        d = document.createElement('p');
        d.className = 'turn-detail';
        e.el.append(d);
      }
      d.textContent = detail;
    }
  }

  complete(id) {
    const e = this.items.get(id);
    if (e && e.status === 'streaming') this.setStatus(id, 'completed');
    if (e && e.el) e.el.classList.toggle('turn-empty', e.textEl.textContent.trim() === '');
  }

  /** Update the pane from one realtime server event (either protocol shape). */
  handleEvent(event) {
    const type = event.type;
    if (ASSISTANT_DELTA.has(type)) {
      this.append(event.item_id, 'assistant', event.delta);
      return;
    }
    if (ASSISTANT_DONE.has(type)) {
      const text = typeof event.transcript === 'string' ? event.transcript : event.text;
      // Keep what streamed if the final text is missing.
      if (typeof text === 'string' && (text !== '' || this.text(event.item_id) === '')) {
        this.setText(event.item_id, 'assistant', text);
      }
      if (this.status(event.item_id) === 'streaming') this.complete(event.item_id);
      return;
    }
    switch (type) {
      case 'input_audio_buffer.committed':
        this.place(event.item_id, event.previous_item_id ?? undefined, 'user');
        break;
      case 'conversation.item.created': // preview
      case 'conversation.item.added': // GA
      case 'conversation.item.done': {
        // GA
        const item = event.item;
        if (!item || !item.id) break;
        const role = item.type === 'message' && ROLE_LABEL[item.role] ? item.role : null;
        const prev = 'previous_item_id' in event ? event.previous_item_id : undefined;
        this.place(item.id, prev, role);
        if (role) {
          const text = contentText(item);
          if (text && this.text(item.id) === '') this.setText(item.id, role, text);
          if (role === 'user' && item.content?.some((c) => c && (c.type === 'input_text' || c.type === 'text'))) {
            this.complete(item.id); // typed text: nothing more to wait for
          }
        }
        break;
      }
      case 'response.output_item.added':
      case 'response.output_item.done': {
        const item = event.item;
        if (!item || !item.id) break;
        const role = item.type === 'message' && ROLE_LABEL[item.role] ? item.role : null;
        this.place(item.id, undefined, role);
        break;
      }
      case 'conversation.item.input_audio_transcription.delta':
        this.append(event.item_id, 'user', event.delta);
        break;
      case 'conversation.item.input_audio_transcription.completed':
        this.setText(event.item_id, 'user', event.transcript ?? '');
        this.complete(event.item_id);
        break;
      case 'conversation.item.input_audio_transcription.failed':
        this.markFailed(event.item_id, 'user', event.error?.message ?? '');
        break;
      case 'conversation.item.truncated':
        this.markInterrupted(event.item_id, event.audio_end_ms ?? null);
        break;
      case 'conversation.item.deleted': {
        const e = this.items.get(event.item_id);
        if (e && e.el) e.el.remove();
        if (e) e.el = null;
        break;
      }
      case 'response.done':
        this.responseDone(event.response);
        break;
      default:
        break;
    }
  }

  responseDone(response) {
    if (!response) return;
    const status = response.status;
    const details = response.status_details ?? {};
    for (const item of response.output ?? []) {
      if (!item || !item.id || item.type !== 'message') continue;
      const e = this.bubble(item.id, 'assistant');
      if (!e) continue;
      const text = contentText(item);
      if (text && this.text(item.id) === '') this.setText(item.id, 'assistant', text);
      if (status === 'cancelled') {
        this.markInterrupted(item.id);
      } else if (status === 'failed') {
        this.markFailed(item.id, 'assistant', details.error?.message ?? details.reason ?? '');
      } else {
        this.complete(item.id);
        if (status === 'incomplete' && details.reason) {
          this.setStatus(item.id, e.status, `cut short (${String(details.reason).replaceAll('_', ' ')})`);
        }
      }
    }
  }
}

export class StatusLine {
  /** @param {HTMLElement} el the role="status" element */
  constructor(el) {
    this.el = el;
  }

  /** kind: 'info', 'ok', 'busy' or 'error' (a class on the element for styling). */
  set(text, kind = 'info') {
    this.el.textContent = text;
    this.el.dataset.kind = kind;
  }

  get text() {
    return this.el.textContent;
  }
}
