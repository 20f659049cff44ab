// Playback of the assistant's audio through the playback-processor worklet.
//
// The service sends PCM16 at 24 kHz; here it is converted to floats and resampled
// to the AudioContext's own rate (Resampler from pcm.js) before it is posted to
// the worklet, which plays it from a ring buffer and reports how many 24 kHz
// samples of each item have really been output. Those counts are what barge-in
// truncation uses: what the user actually heard, never more than was received.

import { Resampler, SERVICE_RATE, msFromSamples, pcm16ToFloat32 } from './pcm.js';

const CLEAR_TIMEOUT_MS = 250;

export class Playback {
  /**
   * @param {AudioContext} context a running context, shared with capture or not
   * @param {object} [callbacks] onPlayed(itemId, samples24k, delta), onUnderrun(), onDrained(),
   *   onStarted(itemId), onLevel(rms) (the output level, RMS of samples in [-1, 1], ~10 times a
   *   second while sound plays, then 0 once)
   * @param {object} [options]
   * @param {string|URL} [options.workletUrl] the playback-processor module; the page gives the
   *   URL its template made ({% static %}: a hashed name in production), beside this file when missing
   */
  constructor(context, callbacks = {}, { workletUrl = null } = {}) {
    this.context = context;
    this.workletUrl = workletUrl || new URL('./worklets/playback-processor.js', import.meta.url);
    this.callbacks = callbacks;
    this.node = null;
    this.resampler = new Resampler(SERVICE_RATE, Math.round(context.sampleRate));
    this.received = new Map(); // itemId -> 24 kHz samples pushed, for items not yet fully played
    this.receivedAll = new Map(); // itemId -> 24 kHz samples pushed, ever
    this.played = new Map(); // itemId -> 24 kHz samples output (from the worklet)
    this.carry24k = 0; // 24 kHz samples of a push too short to give a context-rate sample
    this.pendingClear = null;
    this.totalPlayed24k = 0;
    this.pushedFrames = 0; // context-rate samples posted to the worklet
    this.framesOut = 0; // of those, output so far (as of the last underrun or drain)
    this.underruns = 0;
  }

  async init() {
    await this.context.audioWorklet.addModule(this.workletUrl);
    this.node = new AudioWorkletNode(this.context, 'playback-processor', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.node.port.onmessage = (event) => this.onMessage(event.data);
    this.node.connect(this.context.destination);
  }

  onMessage(m) {
    if (typeof m === 'number') {
      this.callbacks.onLevel?.(m);
      return;
    }
    switch (m.type) {
      case 'played':
        this.notePlayed(m.itemId, m.samples24k);
        break;
      case 'cleared': {
        this.notePlayed(m.itemId, m.samples24k);
        const clear = this.pendingClear;
        this.pendingClear = null;
        if (clear) clear.finish(m.itemId);
        break;
      }
      case 'underrun':
        this.framesOut = m.frames;
        this.underruns++;
        this.dropFinished();
        this.callbacks.onUnderrun?.();
        break;
      case 'drained':
        this.framesOut = m.frames;
        this.dropFinished();
        this.callbacks.onDrained?.();
        break;
      case 'started':
        this.callbacks.onStarted?.(m.itemId);
        break;
      default:
        break;
    }
  }

  notePlayed(itemId, samples24k) {
    if (itemId === null || itemId === undefined) return;
    const before = this.played.get(itemId) ?? 0;
    const cap = this.receivedTotal(itemId);
    const now = Math.min(Math.max(before, samples24k), cap);
    if (now === before) return;
    this.played.set(itemId, now);
    this.totalPlayed24k += now - before;
    this.callbacks.onPlayed?.(itemId, now, now - before);
  }

  receivedTotal(itemId) {
    return this.receivedAll.get(itemId) ?? 0;
  }

  /** Forget items whose audio has all been output. */
  dropFinished() {
    for (const [itemId, n] of this.received) {
      if ((this.played.get(itemId) ?? 0) >= n) this.received.delete(itemId);
    }
  }

  /** Queue 24 kHz PCM16 samples of an assistant item. */
  push(itemId, int16) {
    if (!this.node || int16.length === 0) return;
    this.received.set(itemId, (this.received.get(itemId) ?? 0) + int16.length);
    this.receivedAll.set(itemId, this.receivedTotal(itemId) + int16.length);
    const samples = this.resampler.process(pcm16ToFloat32(int16));
    const samples24k = int16.length + this.carry24k;
    if (samples.length === 0) {
      this.carry24k = samples24k;
      return;
    }
    this.carry24k = 0;
    this.pushedFrames += samples.length;
    this.node.port.postMessage({ type: 'push', itemId, samples, samples24k }, [samples.buffer]);
  }

  /** No more audio will come for this item: its tail may play without prebuffering. */
  end(itemId) {
    this.node?.port.postMessage({ type: 'end', itemId });
  }

  /** True while audio is playing or queued (reports lag by at most ~50 ms). */
  get isPlaying() {
    for (const [itemId, n] of this.received) {
      if ((this.played.get(itemId) ?? 0) < n) return true;
    }
    return false;
  }

  /** The item being played, or the first one queued; null when idle. */
  get currentItemId() {
    for (const [itemId, n] of this.received) {
      if ((this.played.get(itemId) ?? 0) < n) return itemId;
    }
    return null;
  }

  /** Items with audio playing or queued, in the order they were pushed. */
  get queuedItemIds() {
    const ids = [];
    for (const [itemId, n] of this.received) if ((this.played.get(itemId) ?? 0) < n) ids.push(itemId);
    return ids;
  }

  /** Milliseconds of an item's audio output so far (from the worklet's count). */
  playedMs(itemId) {
    return msFromSamples(this.played.get(itemId) ?? 0);
  }

  /** Samples (24 kHz) of an item received so far. */
  receivedSamples(itemId) {
    return this.receivedTotal(itemId);
  }

  /** Samples (24 kHz) of an item output so far, as the worklet counted them. */
  playedSamples(itemId) {
    return this.played.get(itemId) ?? 0;
  }

  /**
   * Drop everything queued and stop at once.
   * Resolves to {itemId, playedMs, playedSamples} for the item that was playing (or
   * first queued): how much of it was actually output, from the worklet's count.
   */
  clear() {
    const expected = this.currentItemId;
    this.received.clear();
    this.resampler.reset();
    this.carry24k = 0;
    if (!this.node) {
      const playedSamples = this.playedSamples(expected);
      return Promise.resolve({ itemId: expected, playedMs: msFromSamples(playedSamples), playedSamples });
    }
    if (this.pendingClear) {
      // A clear is already on its way: answer both with the same result.
      return this.pendingClear.promise;
    }
    let finish;
    const promise = new Promise((resolve) => {
      let timer = null;
      finish = (workletItemId) => {
        clearTimeout(timer);
        const itemId = expected ?? workletItemId ?? null;
        resolve({ itemId, playedMs: itemId ? this.playedMs(itemId) : 0, playedSamples: this.playedSamples(itemId) });
      };
      // If the worklet cannot answer (suspended context), use the last report.
      timer = setTimeout(() => {
        if (this.pendingClear?.promise === promise) this.pendingClear = null;
        finish(null);
      }, CLEAR_TIMEOUT_MS);
    });
    this.pendingClear = { promise, finish };
    this.node.port.postMessage({ type: 'clear' });
    return promise;
  }

  get totalPlayedSamples() {
    return this.totalPlayed24k;
  }

  close() {
    if (this.node) {
      this.node.port.postMessage({ type: 'close' });
      this.node.port.onmessage = null;
      this.node.disconnect();
      this.node = null;
    }
    if (this.pendingClear) this.pendingClear.finish(null);
    this.pendingClear = null;
    this.received.clear();
  }
}
