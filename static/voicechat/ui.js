// The transcript pane and the status line. Received text only ever goes into
// textContent.
//
// Bubbles are keyed by realtime item id and placed in conversation order, which
// the service gives with `previous_item_id` (on input_audio_buffer.committed and
// conversation.item.created (preview) / conversation.item.added (GA)), not in
// the order events arrive: a user transcript that is ready only after the reply
// has started still shows above that reply. The ordering itself is ItemOrder
// (order.js), which has no DOM and is tested in Node.

import { ItemOrder } from './order.js';

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

// When a conversation goes on in a new service session, the server re-sends the
// earlier turns as items with ids of its own (voicechat/realtime/history.py); the
// service echoes them back. They are already on screen, so they only keep their
// place in the order.
const HISTORY_PREFIX = 'vchist_';

export function isHistoryItem(id) {
  return typeof id === 'string' && id.startsWith(HISTORY_PREFIX);
}

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
    this.order = new ItemOrder(); // every item id seen, displayed or not
    this.items = new Map(); // id -> {id, role, el, textEl, noteEl, status, heardMs}
  }

  reset() {
    this.order.clear();
    this.items.clear();
    this.pane.replaceChildren();
  }

  /** A new service session begins (reconnect, renewal): its first item follows what is shown. */
  newSession() {
    this.order.mark();
  }

  get size() {
    return this.pane.querySelectorAll('.turn').length;
  }

  entry(id) {
    let e = this.items.get(id);
    if (!e) {
      e = { id, role: null, el: null, textEl: null, noteEl: null, status: 'streaming', heardMs: null };
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
    const moved = this.order.place(id, previousId);
    if (moved && e.el) this.attach(e); // put its bubble where it now belongs
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
    const shown = (id) => {
      const prev = this.items.get(id);
      return Boolean(prev && prev.el && prev.el.parentNode === this.pane);
    };
    const before = this.order.before(e.id, shown);
    if (before !== null) this.items.get(before).el.after(e.el);
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

  /** Assistant items still streaming when the connection was lost: cut off there. */
  markConnectionLost() {
    for (const e of this.items.values()) {
      if (e.role === 'assistant' && e.status === 'streaming') this.setStatus(e.id, 'interrupted', 'cut off: connection lost');
    }
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
        const prev = 'previous_item_id' in event ? event.previous_item_id : undefined;
        if (isHistoryItem(item.id)) {
          this.place(item.id, prev, null);
          break;
        }
        const role = item.type === 'message' && ROLE_LABEL[item.role] ? item.role : null;
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

const NOT_TYPED = new Set(['button', 'checkbox', 'color', 'file', 'image', 'radio', 'range', 'reset', 'submit']);

/**
 * Whether keys typed at `el` are text (a text box, a select, an editable area):
 * there the space bar types a space instead of holding push-to-talk.
 */
export function isTextEntry(el) {
  if (!el) return false;
  if (el.isContentEditable) return true;
  const tag = String(el.tagName || '').toUpperCase();
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag === 'INPUT') return !NOT_TYPED.has(String(el.type || 'text').toLowerCase());
  return false;
}

/** "0.5 s", "1 s", "4 s" */
export function formatSeconds(ms) {
  return `${Math.round(ms / 100) / 10} s`;
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

/** One side of the conversation: whether it is speaking, and its level meter. */
export class VoiceIndicator {
  /** @param {HTMLElement} el holding a .voice-state text and a .level-bar */
  constructor(el) {
    this.el = el;
    this.stateEl = el.querySelector('.voice-state');
    this.bar = el.querySelector('.level-bar');
    this.speaking = false;
    this.muted = false;
    this.level = 0;
    this.render();
  }

  setSpeaking(speaking) {
    if (speaking === this.speaking) return;
    this.speaking = speaking;
    this.render();
  }

  setMuted(muted) {
    if (muted === this.muted) return;
    this.muted = muted;
    this.render();
  }

  /** 0..1; a CSS transform, so the bar moves without layout work. */
  setLevel(level) {
    const value = Math.round(Math.max(0, Math.min(1, level)) * 100) / 100;
    if (value === this.level) return;
    this.level = value;
    this.bar.style.transform = `scaleX(${value})`;
  }

  render() {
    this.el.dataset.speaking = this.speaking ? 'true' : 'false';
    this.el.dataset.muted = this.muted ? 'true' : 'false';
    let text = this.speaking ? 'speaking' : 'quiet';
    if (this.muted) text = this.speaking ? 'muted (talking)' : 'muted';
    this.stateEl.textContent = text;
  }
}

/** A short notice (not an error) that stays for a while, then goes. */
export class Notice {
  constructor(el, { showForMs = 10000 } = {}) {
    this.el = el;
    this.showForMs = showForMs;
    this.timer = null;
  }

  show(text) {
    this.el.textContent = text;
    this.el.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.hide(), this.showForMs);
  }

  hide() {
    clearTimeout(this.timer);
    this.timer = null;
    this.el.hidden = true;
    this.el.textContent = '';
  }

  get text() {
    return this.el.hidden ? '' : this.el.textContent;
  }
}
