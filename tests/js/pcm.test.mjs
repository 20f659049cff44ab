// Tests for static/voicechat/pcm.js, run with `node --test tests/js/`.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { rng } from './random.mjs';

import {
  Resampler,
  base64FromBytes,
  bytesFromBase64,
  bytesFromInt16,
  floatTo16BitPCM,
  int16FromBytes,
  msFromSamples,
  pcm16ToFloat32,
} from '../../static/voicechat/pcm.js';


function sine(freq, rate, n, amplitude = 0.8, phase = 0) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate + phase);
  return out;
}

/** Feed `input` to `resampler` in chunks of random sizes in [1, maxChunk]; the outputs and where each chunk's output began. */
function resampleInChunks(resampler, input, random, maxChunk = 300) {
  const parts = [];
  const starts = [];
  let total = 0;
  for (let i = 0; i < input.length; ) {
    const n = Math.min(input.length - i, 1 + Math.floor(random() * maxChunk));
    const out = resampler.process(input.subarray(i, i + n));
    starts.push(total);
    parts.push(out);
    total += out.length;
    i += n;
  }
  const joined = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return { output: joined, starts };
}

function zeroCrossings(x) {
  let n = 0;
  for (let i = 1; i < x.length; i++) if ((x[i - 1] < 0 && x[i] >= 0) || (x[i - 1] >= 0 && x[i] < 0)) n++;
  return n;
}

describe('floatTo16BitPCM', () => {
  test('clamps out-of-range values and maps the ends to the Int16 limits', () => {
    const out = floatTo16BitPCM(new Float32Array([1, -1, 1.5, -1.5, 100, -100, Infinity, -Infinity]));
    assert.ok(out instanceof Int16Array);
    assert.deepEqual([...out], [32767, -32768, 32767, -32768, 32767, -32768, 32767, -32768]);
  });

  test('rounds to the nearest step instead of truncating', () => {
    const input = new Float64Array([0, 0.6 / 32767, 0.4 / 32767, -0.6 / 32768, -0.4 / 32768, 0.5, -0.5, 2.7 / 32767, -2.7 / 32768]);
    const out = floatTo16BitPCM(input);
    assert.deepEqual([...out], [0, 1, 0, -1, 0, 16384, -16384, 3, -3]);
  });

  test('maps NaN to silence and keeps the length', () => {
    const out = floatTo16BitPCM(new Float32Array([NaN, 0.25, NaN]));
    assert.equal(out.length, 3);
    assert.equal(out[0], 0);
    assert.equal(out[1], Math.round(0.25 * 32767));
    assert.equal(out[2], 0);
  });
});

describe('pcm16ToFloat32', () => {
  test('every Int16 value survives Int16 -> float -> Int16', () => {
    const all = new Int16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i - 32768;
    const floats = pcm16ToFloat32(all);
    assert.ok(floats instanceof Float32Array);
    assert.equal(floats[0], -1);
    assert.equal(floats[65535], 1);
    for (const f of floats) assert.ok(f >= -1 && f <= 1);
    assert.deepEqual(floatTo16BitPCM(floats), all);
  });

  test('float -> Int16 -> float stays within half a step', () => {
    const random = rng(1);
    const input = new Float32Array(10000).map(() => random() * 2 - 1);
    const back = pcm16ToFloat32(floatTo16BitPCM(input));
    for (let i = 0; i < input.length; i++) assert.ok(Math.abs(back[i] - input[i]) <= 0.5 / 32767 + 1e-7, `sample ${i}`);
  });
});

describe('base64', () => {
  test('round trips random bytes of many lengths, odd ones and multi-chunk ones included', () => {
    const random = rng(2);
    for (const length of [0, 1, 2, 3, 4, 5, 7, 31, 255, 1001, 4800, 32767, 32768, 32769, 100003]) {
      const bytes = new Uint8Array(length).map(() => Math.floor(random() * 256));
      const text = base64FromBytes(bytes);
      assert.equal(text, Buffer.from(bytes).toString('base64'), `encoding of ${length} bytes`);
      assert.deepEqual(bytesFromBase64(text), bytes, `round trip of ${length} bytes`);
    }
  });

  test('known values', () => {
    assert.equal(base64FromBytes(new TextEncoder().encode('hello')), 'aGVsbG8=');
    assert.deepEqual(bytesFromBase64('AP8='), new Uint8Array([0, 255]));
    // 100 ms of 24 kHz PCM16 is 4800 bytes, 6400 base64 characters.
    assert.equal(base64FromBytes(new Uint8Array(4800)).length, 6400);
  });

  test('works on a view into a larger buffer', () => {
    const big = new Uint8Array([9, 9, 1, 2, 3, 9]);
    assert.equal(base64FromBytes(big.subarray(2, 5)), Buffer.from([1, 2, 3]).toString('base64'));
  });
});

describe('Int16 <-> little-endian bytes', () => {
  test('byte order is little-endian', () => {
    assert.deepEqual([...bytesFromInt16(new Int16Array([1, -2, 0x1234]))], [1, 0, 0xfe, 0xff, 0x34, 0x12]);
    assert.deepEqual([...int16FromBytes(new Uint8Array([1, 0, 0xfe, 0xff, 0x34, 0x12]))], [1, -2, 0x1234]);
  });

  test('an odd trailing byte is ignored and unaligned views are read correctly', () => {
    assert.deepEqual([...int16FromBytes(new Uint8Array([0xff, 0x7f, 0x00]))], [32767]);
    const buffer = new Uint8Array([0xaa, 0x00, 0x80, 0x01, 0x00]);
    assert.deepEqual([...int16FromBytes(buffer.subarray(1))], [-32768, 1]);
  });

  test('PCM16 -> base64 -> PCM16 round trip', () => {
    const random = rng(3);
    const samples = new Int16Array(961).map(() => Math.floor(random() * 65536) - 32768);
    const back = int16FromBytes(bytesFromBase64(base64FromBytes(bytesFromInt16(samples))));
    assert.deepEqual(back, samples);
  });
});

describe('msFromSamples', () => {
  test('converts at 24 kHz by default and at any given rate', () => {
    assert.equal(msFromSamples(24000), 1000);
    assert.equal(msFromSamples(960), 40);
    assert.equal(msFromSamples(2400), 100);
    assert.equal(msFromSamples(0), 0);
    assert.equal(msFromSamples(4410, 44100), 100);
    assert.equal(msFromSamples(12, 24000), 0.5);
  });
});

describe('Resampler', () => {
  for (const inRate of [48000, 44100, 16000, 22050, 8000, 96000]) {
    test(`${inRate} -> 24000 over many small chunks gives the expected number of samples`, () => {
      const random = rng(inRate);
      const r = new Resampler(inRate, 24000);
      let inputTotal = 0;
      let outputTotal = 0;
      for (let k = 0; k < 2000; k++) {
        const n = 1 + Math.floor(random() * 200);
        const predicted = r.outputLength(n);
        const out = r.process(new Float32Array(n));
        assert.equal(out.length, predicted);
        inputTotal += n;
        outputTotal += out.length;
        const expected = (inputTotal * 24000) / inRate;
        // Within 1 sample when downsampling; upsampling can only interpolate up to the
        // last input sample, so it may lag by up to one input sample (24000 / inRate outputs).
        const lag = expected - outputTotal;
        assert.ok(lag >= -1 && lag <= Math.max(1, 24000 / inRate), `after ${inputTotal} samples: ${outputTotal} vs ${expected}`);
      }
    });
  }

  test('defaults to a 24 kHz output', () => {
    const r = new Resampler(48000);
    assert.equal(r.outRate, 24000);
    assert.equal(r.process(new Float32Array(4800)).length, 2400);
  });

  test('24000 -> 24000 is the identity, in chunks too', () => {
    const random = rng(5);
    const input = new Float32Array(5000).map(() => random() * 2 - 1);
    const { output } = resampleInChunks(new Resampler(24000, 24000), input, random, 50);
    assert.deepEqual(output, input);
  });

  test('48000 -> 24000 keeps every other sample (no interpolation needed)', () => {
    const input = new Float32Array([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    const out = new Resampler(48000, 24000).process(input);
    assert.deepEqual([...out], [0, 0.2, 0.4, 0.6].map(Math.fround));
  });

  test('24000 -> 48000 interpolates halfway between neighbours, across chunk boundaries too', () => {
    const r = new Resampler(24000, 48000);
    const a = r.process(new Float32Array([0, 1]));
    const b = r.process(new Float32Array([0, -1]));
    assert.deepEqual([...a, ...b], [0, 0.5, 1, 0.5, 0, -0.5, -1]);
  });

  test('chunked output equals output of the whole signal at once', () => {
    for (const inRate of [44100, 48000, 16000]) {
      const random = rng(inRate + 7);
      const input = new Float32Array(inRate).map(() => random() * 2 - 1);
      const whole = new Resampler(inRate).process(input);
      const { output } = resampleInChunks(new Resampler(inRate), input, random, 257);
      assert.equal(output.length, whole.length);
      for (let i = 0; i < whole.length; i++) {
        assert.ok(Math.abs(output[i] - whole[i]) < 1e-6, `${inRate}: sample ${i}: ${output[i]} vs ${whole[i]}`);
      }
    }
  });

  test('a sine keeps its frequency (zero crossings)', () => {
    for (const [freq, inRate] of [
      [440, 44100],
      [1000, 48000],
      [300, 16000],
      [3000, 44100],
    ]) {
      const seconds = 2;
      const input = sine(freq, inRate, inRate * seconds, 0.8, 0.3);
      const { output } = resampleInChunks(new Resampler(inRate), input, rng(freq), 128);
      const expected = 2 * freq * seconds; // two crossings per period
      const got = zeroCrossings(output);
      assert.ok(Math.abs(got - expected) <= 2, `${freq} Hz from ${inRate}: ${got} crossings, expected ${expected}`);
      // And the samples are where the sine says they should be.
      for (let j = 0; j < output.length; j += 97) {
        const t = j / 24000;
        const ideal = 0.8 * Math.sin(2 * Math.PI * freq * t + 0.3);
        const tolerance = 0.8 * (2 * Math.PI * freq / inRate) ** 2 / 8 + 1e-5; // linear interpolation error bound
        assert.ok(Math.abs(output[j] - ideal) <= tolerance, `${freq} Hz from ${inRate}, sample ${j}`);
      }
    }
  });

  test('no jump at chunk boundaries larger than the signal itself allows', () => {
    for (const inRate of [44100, 48000]) {
      const freq = 440;
      const amplitude = 0.9;
      const input = sine(freq, inRate, inRate, amplitude);
      const { output, starts } = resampleInChunks(new Resampler(inRate), input, rng(11), 128);
      // A sine's largest step between samples 1/24000 s apart, with a little slack.
      const maxStep = amplitude * 2 * Math.sin((Math.PI * freq) / 24000) * 1.01 + 1e-6;
      let boundaries = 0;
      for (const s of starts) {
        if (s === 0 || s >= output.length) continue;
        boundaries++;
        const jump = Math.abs(output[s] - output[s - 1]);
        assert.ok(jump <= maxStep, `${inRate}: jump ${jump} at output ${s} > ${maxStep}`);
      }
      assert.ok(boundaries > 100);
    }
  });

  test('a constant signal fed one sample at a time stays constant (no click at the start or between chunks)', () => {
    const r = new Resampler(44100);
    const out = [];
    for (let i = 0; i < 4410; i++) out.push(...r.process(new Float32Array([0.5])));
    assert.ok(Math.abs(out.length - 2400) <= 1);
    for (const v of out) assert.equal(v, 0.5);
  });

  test('reset() starts a new stream', () => {
    const r = new Resampler(48000);
    r.process(new Float32Array([1, 1, 1]));
    r.reset();
    const a = r.process(new Float32Array([0.25, 0.25, 0.25, 0.25]));
    const b = new Resampler(48000).process(new Float32Array([0.25, 0.25, 0.25, 0.25]));
    assert.deepEqual(a, b);
  });

  test('empty chunks are fine and rates must be positive integers', () => {
    const r = new Resampler(44100);
    assert.equal(r.process(new Float32Array(0)).length, 0);
    assert.throws(() => new Resampler(0));
    assert.throws(() => new Resampler(44100.5));
    assert.throws(() => new Resampler(48000, -1));
  });
});
