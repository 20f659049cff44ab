// Tests for the two AudioWorkletProcessors, run in Node: the worklet files are
// loaded as they are, with the few globals of AudioWorkletGlobalScope they use
// (AudioWorkletProcessor, registerProcessor, sampleRate, currentFrame) provided
// here, and their process() driven one 128-frame render quantum at a time.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { rng } from './random.mjs';

import { Resampler, floatTo16BitPCM, rms } from '../../static/voicechat/pcm.js';

const QUANTUM = 128;
const processors = {};

class FakePort {
  constructor() {
    this.sent = [];
    this.onmessage = null;
  }

  postMessage(message) {
    this.sent.push(message);
  }

  /** A message from the main thread. */
  deliver(message) {
    this.onmessage?.({ data: message });
  }

  take() {
    return this.sent.splice(0);
  }
}

globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = new FakePort();
  }
};
globalThis.registerProcessor = (name, processor) => {
  processors[name] = processor;
};
globalThis.sampleRate = 48000;
globalThis.currentFrame = 0;
await import('../../static/voicechat/worklets/capture-processor.js');
await import('../../static/voicechat/worklets/playback-processor.js');

function make(name, rate) {
  globalThis.sampleRate = rate;
  globalThis.currentFrame = 0;
  return new processors[name]();
}


function sine(freq, rate, n, amplitude = 0.5) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function concat(parts, Type = Float32Array) {
  const out = new Type(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('capture-processor', () => {
  for (const rate of [44100, 48000]) {
    test(`at ${rate} Hz: 24 kHz PCM16 in 960-sample chunks, the same as Resampler + floatTo16BitPCM`, () => {
      const p = make('capture-processor', rate);
      const signal = sine(440, rate, rate * 2 + 1000); // two seconds and a bit
      for (let i = 0; i < signal.length; i += QUANTUM) p.process([[signal.subarray(i, i + QUANTUM)]]);
      p.port.deliver({ type: 'flush' });
      const messages = p.port.take();
      const chunks = messages.filter((m) => m && m.type === 'chunk').map((m) => new Int16Array(m.buffer));
      assert.deepEqual(messages.at(-1), { type: 'flushed' });
      assert.ok(chunks.slice(0, -1).every((c) => c.length === 960));
      assert.ok(chunks.at(-1).length > 0 && chunks.at(-1).length < 960);
      const expected = floatTo16BitPCM(new Resampler(rate, 24000).process(signal));
      const got = concat(chunks, Int16Array);
      assert.equal(got.length, expected.length);
      assert.equal(got.length, Math.floor(((signal.length - 1) * 24000) / rate) + 1);
      assert.deepEqual(got, expected);
    });

    test(`at ${rate} Hz: the input level is posted about every 100 ms as a bare number`, () => {
      const p = make('capture-processor', rate);
      const signal = sine(300, rate, rate, 0.25);
      const fed = [];
      for (let i = 0; i < signal.length; i += QUANTUM) {
        const block = signal.subarray(i, i + QUANTUM);
        p.process([[block]]);
        fed.push(block);
      }
      const levels = p.port.take().filter((m) => typeof m === 'number');
      assert.ok(levels.length >= 9 && levels.length <= 10, String(levels.length));
      // Each level is the RMS of the blocks since the last one: the first covers
      // ceil(rate / 10 / 128) blocks.
      const blocks = Math.ceil(Math.round(rate / 10) / QUANTUM);
      assert.ok(Math.abs(levels[0] - rms(concat(fed.slice(0, blocks)))) < 1e-6);
      for (const level of levels) assert.ok(Math.abs(level - 0.25 / Math.SQRT2) < 0.01, String(level));
    });
  }

  test('downmixes several channels to mono', () => {
    const p = make('capture-processor', 48000);
    const left = new Float32Array(QUANTUM * 16).fill(0.5);
    const right = new Float32Array(QUANTUM * 16).fill(0.1);
    for (let i = 0; i < left.length; i += QUANTUM) {
      p.process([[left.subarray(i, i + QUANTUM), right.subarray(i, i + QUANTUM)]]);
    }
    p.port.deliver({ type: 'flush' });
    const samples = concat(
      p.port
        .take()
        .filter((m) => m && m.type === 'chunk')
        .map((m) => new Int16Array(m.buffer)),
      Int16Array,
    );
    assert.ok(samples.length > 900);
    assert.ok(samples.slice(1).every((s) => s === Math.round(0.3 * 0x7fff)));
  });

  test('reuses the buffers handed back instead of allocating new ones', () => {
    const p = make('capture-processor', 48000);
    const block = sine(200, 48000, QUANTUM);
    const seen = new Set();
    for (let k = 0; k < 3000; k++) {
      p.process([[block]]);
      for (const m of p.port.take()) {
        if (m && m.type === 'chunk') {
          seen.add(m.buffer);
          p.port.deliver({ type: 'recycle', buffer: m.buffer });
        }
      }
    }
    // 8 s of audio is 200 chunks, all from the first pool of 16 (and the one in use).
    assert.ok(seen.size <= 17, String(seen.size));
  });

  test('stop posts the rest, answers stopped and ends the processor', () => {
    const p = make('capture-processor', 48000);
    p.process([[new Float32Array(QUANTUM).fill(0.2)]]);
    p.port.take();
    p.port.deliver({ type: 'stop' });
    const messages = p.port.take();
    assert.equal(messages[0].type, 'chunk');
    assert.equal(new Int16Array(messages[0].buffer).length, 64);
    assert.deepEqual(messages[1], { type: 'stopped' });
    assert.equal(p.process([[new Float32Array(QUANTUM)]]), false);
  });
});

/** A playback processor at `rate`, with helpers to push 24 kHz audio and render. */
function player(rate) {
  const p = make('playback-processor', rate);
  const resampler = new Resampler(24000, rate);
  const messages = [];
  const played = new Map();
  let pushedFrames = 0;
  const collect = () => {
    for (const m of p.port.take()) {
      messages.push(m);
      if (m && (m.type === 'played' || m.type === 'cleared') && m.itemId !== null) played.set(m.itemId, m.samples24k);
    }
  };
  return {
    p,
    messages,
    played,
    get pushedFrames() {
      return pushedFrames;
    },
    push(itemId, samples24k) {
      const samples = resampler.process(sine(440, 24000, samples24k));
      pushedFrames += samples.length;
      p.port.deliver({ type: 'push', itemId, samples, samples24k });
      collect();
    },
    send(message) {
      p.port.deliver(message);
      collect();
    },
    render() {
      const out = new Float32Array(QUANTUM);
      p.process([], [[out]]);
      globalThis.currentFrame += QUANTUM;
      collect();
      return out;
    },
    count(type) {
      return messages.filter((m) => m && m.type === type).length;
    },
  };
}

describe('playback-processor', () => {
  for (const rate of [44100, 48000]) {
    test(`at ${rate} Hz: 100 ms deltas with 0-80 ms of jitter play without an underrun, every sample counted`, () => {
      const random = rng(rate);
      const x = player(rate);
      const deltas = 60; // six seconds
      const arrivals = [];
      for (let k = 0; k < deltas; k++) arrivals.push(Math.round(((k * 100 + random() * 80) * rate) / 1000));
      arrivals.sort((a, b) => a - b); // a late delta cannot overtake the next on one socket
      let next = 0;
      const silentAfterStart = [];
      let started = false;
      while (x.count('drained') === 0) {
        while (next < deltas && arrivals[next] <= globalThis.currentFrame) {
          x.push('item_1', 2400);
          next++;
          if (next === deltas) x.send({ type: 'end', itemId: 'item_1' });
        }
        const out = x.render();
        started ||= x.count('started') > 0;
        if (started && x.count('drained') === 0 && out.every((s) => s === 0)) silentAfterStart.push(globalThis.currentFrame);
        assert.ok(globalThis.currentFrame < rate * 10, 'never drained');
      }
      assert.equal(x.count('underrun'), 0);
      assert.equal(x.count('started'), 1);
      assert.deepEqual(silentAfterStart, []);
      assert.equal(x.played.get('item_1'), deltas * 2400);
      assert.equal(x.messages.find((m) => m.type === 'drained').frames, x.pushedFrames);
    });
  }

  test('waits about 100 ms after the first audio before it starts', () => {
    const x = player(48000);
    x.push('item_1', 2400);
    let frames = 0;
    for (;;) {
      const out = x.render();
      if (x.count('started') > 0) break;
      assert.ok(out.every((s) => s === 0));
      frames += QUANTUM;
      assert.ok(frames < 48000);
    }
    // Silent for 100 ms (rounded up to whole render quanta), then playing.
    assert.ok(frames >= 4800 && frames <= 4800 + QUANTUM, String(frames));
  });

  test('starts at once when 200 ms or more is already there, or when the item has ended', () => {
    const burst = player(48000);
    burst.push('item_1', 6000);
    burst.render();
    assert.equal(burst.count('started'), 1);

    const tail = player(48000);
    tail.push('item_1', 480);
    tail.send({ type: 'end', itemId: 'item_1' });
    tail.render();
    assert.equal(tail.count('started'), 1);
  });

  test('reports an underrun when the audio stops coming, and a drain at the end of an item', () => {
    const x = player(48000);
    x.push('item_1', 2400);
    for (let k = 0; k < 100; k++) x.render();
    assert.equal(x.count('underrun'), 1);
    assert.equal(x.played.get('item_1'), 2400);
    x.push('item_1', 2400);
    x.send({ type: 'end', itemId: 'item_1' });
    for (let k = 0; k < 100; k++) x.render();
    assert.equal(x.count('underrun'), 1);
    assert.equal(x.count('drained'), 1);
    assert.equal(x.played.get('item_1'), 4800);
  });

  test('clear stops at once and answers with the samples of the item really played', () => {
    const x = player(48000);
    for (let k = 0; k < 20; k++) x.push('item_1', 2400); // 2 s queued
    while (x.count('started') === 0) x.render();
    let frames = QUANTUM; // the quantum that started played in full
    for (let k = 0; k < 150; k++) {
      x.render();
      frames += QUANTUM;
    }
    x.send({ type: 'clear' });
    const cleared = x.messages.find((m) => m.type === 'cleared');
    assert.equal(cleared.itemId, 'item_1');
    assert.equal(cleared.queued, true);
    // 48 kHz output frames are two 24 kHz samples each (the first one came from one).
    assert.ok(Math.abs(cleared.samples24k - frames / 2) <= 1, `${cleared.samples24k} vs ${frames / 2}`);
    x.render(); // the ~1 ms fade
    const after = x.render();
    assert.ok(after.every((s) => s === 0));
    assert.equal(x.played.get('item_1'), cleared.samples24k);
  });

  test('counts each item on its own, in order', () => {
    const x = player(48000);
    x.push('item_1', 1200);
    x.push('item_2', 3600);
    x.send({ type: 'end', itemId: 'item_2' });
    for (let k = 0; k < 200; k++) x.render();
    assert.equal(x.played.get('item_1'), 1200);
    assert.equal(x.played.get('item_2'), 3600);
  });

  test('posts the output level while sound plays and a single zero after', () => {
    const x = player(48000);
    for (let k = 0; k < 5; k++) x.push('item_1', 2400);
    x.send({ type: 'end', itemId: 'item_1' });
    for (let k = 0; k < 600; k++) x.render(); // 1.6 s
    const levels = x.messages.filter((m) => typeof m === 'number');
    const loud = levels.filter((l) => l > 0);
    assert.ok(loud.length >= 4, String(levels));
    assert.ok(loud.some((l) => Math.abs(l - 0.5 / Math.SQRT2) < 0.01));
    assert.equal(levels.at(-1), 0);
    assert.equal(levels.filter((l) => l === 0).length, 1);
  });
});
