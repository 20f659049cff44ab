// Tests for the sample counting, truncation and level helpers of static/voicechat/pcm.js
// and the client_info description of static/voicechat/capture.js.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { audioConstraints, describeAudio } from '../../static/voicechat/capture.js';
import {
  Resampler,
  heardMs,
  levelFromRms,
  msFromSamples,
  rms,
  samplesFromMs,
} from '../../static/voicechat/pcm.js';

function sine(freq, rate, n, amplitude = 0.8) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function zeroCrossings(x) {
  let n = 0;
  for (let i = 1; i < x.length; i++) if ((x[i - 1] < 0 && x[i] >= 0) || (x[i - 1] >= 0 && x[i] < 0)) n++;
  return n;
}

describe('samplesFromMs and msFromSamples', () => {
  test('100 ms is 2400 samples at 24 kHz, 4410 at 44.1 kHz and 4800 at 48 kHz', () => {
    assert.equal(samplesFromMs(100), 2400);
    assert.equal(samplesFromMs(100, 44100), 4410);
    assert.equal(samplesFromMs(100, 48000), 4800);
  });

  test('round down to whole samples and invert msFromSamples', () => {
    assert.equal(samplesFromMs(0.05), 1); // 1.2 samples
    assert.equal(samplesFromMs(0.01), 0);
    for (const rate of [24000, 44100, 48000]) {
      for (let n = 0; n < 50000; n += 37) assert.equal(samplesFromMs(msFromSamples(n, rate), rate), n, `${n} @ ${rate}`);
    }
  });
});

describe('heardMs (the audio_end_ms of a truncate)', () => {
  test('whole milliseconds of what was played, rounded down', () => {
    assert.equal(heardMs(24000, 48000), 1000);
    assert.equal(heardMs(24023, 48000), 1000); // 1000.96 ms
    assert.equal(heardMs(24024, 48000), 1001);
    assert.equal(heardMs(0, 4800), 0);
  });

  test('never more than was received, never negative', () => {
    assert.equal(heardMs(50000, 36000), 1500);
    assert.equal(heardMs(-5, 100), 0);
    for (let received = 0; received < 30000; received += 997) {
      for (let played = 0; played < 40000; played += 1231) {
        const ms = heardMs(played, received);
        assert.ok(ms <= msFromSamples(received) && ms >= 0);
      }
    }
  });
});

describe('rms', () => {
  test('of silence, a constant and a full-scale square wave', () => {
    assert.equal(rms(new Float32Array(100)), 0);
    assert.equal(rms(new Float32Array(100).fill(0.5)), 0.5);
    const square = new Float32Array(100).map((_, i) => (i % 2 ? 1 : -1));
    assert.equal(rms(square), 1);
  });

  test('of a sine is amplitude / sqrt(2)', () => {
    const x = sine(1000, 48000, 48000, 0.5);
    assert.ok(Math.abs(rms(x) - 0.5 / Math.SQRT2) < 1e-4);
  });

  test('of a range, and 0 for an empty one', () => {
    const x = new Float32Array([9, 3, 4, 9]);
    assert.equal(rms(x, 1, 3), Math.sqrt((9 + 16) / 2));
    assert.equal(rms(x, 2, 2), 0);
    assert.equal(rms(new Float32Array(0)), 0);
  });
});

describe('levelFromRms', () => {
  test('maps -60 dBFS .. 0 dBFS onto 0 .. 1', () => {
    assert.equal(levelFromRms(0), 0);
    assert.equal(levelFromRms(0.001), 0); // -60 dB
    assert.ok(Math.abs(levelFromRms(0.01) - 1 / 3) < 1e-9); // -40 dB
    assert.ok(Math.abs(levelFromRms(0.1) - 2 / 3) < 1e-9); // -20 dB
    assert.equal(levelFromRms(1), 1);
    assert.equal(levelFromRms(4), 1);
  });

  test('rises with the signal and ignores bad input', () => {
    let last = -1;
    for (let v = 0.0005; v <= 1; v *= 1.3) {
      const level = levelFromRms(v);
      assert.ok(level >= last && level >= 0 && level <= 1);
      last = level;
    }
    assert.equal(levelFromRms(Number.NaN), 0);
    assert.equal(levelFromRms(-1), 0);
    assert.equal(levelFromRms(0.01, -40), 0);
  });
});

describe('Resampler for playback: 24 kHz service audio to the device rate', () => {
  for (const outRate of [44100, 48000]) {
    test(`24000 -> ${outRate}: the expected number of samples, and the pitch kept`, () => {
      const input = sine(440, 24000, 24000);
      const r = new Resampler(24000, outRate);
      let total = 0;
      const parts = [];
      for (let i = 0; i < input.length; i += 2400) {
        const out = r.process(input.subarray(i, i + 2400)); // 100 ms deltas, as the service sends them
        parts.push(out);
        total += out.length;
      }
      assert.equal(total, Math.floor(((input.length - 1) * outRate) / 24000) + 1);
      const joined = new Float32Array(total);
      let at = 0;
      for (const p of parts) {
        joined.set(p, at);
        at += p.length;
      }
      // One second of 440 Hz crosses zero 880 times at any rate.
      assert.ok(Math.abs(zeroCrossings(joined) - 880) <= 2, String(zeroCrossings(joined)));
      assert.ok(Math.abs(rms(joined) - 0.8 / Math.SQRT2) < 0.01);
    });
  }
});

describe('describeAudio (voicechat.client_info)', () => {
  test('takes what the track reports', () => {
    const audio = describeAudio(
      {
        deviceId: 'abc',
        echoCancellation: true,
        noiseSuppression: false,
        autoGainControl: true,
        sampleRate: 48000,
        channelCount: 1,
        latency: 0.01,
      },
      { label: 'USB microphone', contextRate: 44100 },
    );
    assert.deepEqual(audio, {
      echoCancellation: true,
      noiseSuppression: false,
      autoGainControl: true,
      sampleRate: 48000,
      channelCount: 1,
      deviceLabel: 'USB microphone',
    });
  });

  test('falls back to the AudioContext rate when the track gives none', () => {
    const audio = describeAudio({ echoCancellation: true }, { label: '', contextRate: 44100 });
    assert.deepEqual(audio, { echoCancellation: true, sampleRate: 44100, deviceLabel: '' });
    assert.deepEqual(describeAudio(undefined), { deviceLabel: '' });
  });
});

describe('audioConstraints', () => {
  test('asks for echo cancellation, noise suppression, gain control and one channel', () => {
    assert.deepEqual(audioConstraints(), {
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      channelCount: 1,
    });
  });

  test('pins a chosen device, and leaves the default alone', () => {
    assert.deepEqual(audioConstraints('mic-2').deviceId, { exact: 'mic-2' });
    assert.equal('deviceId' in audioConstraints(''), false);
    assert.equal('deviceId' in audioConstraints(null), false);
  });
});
