// PCM helpers shared by the page and the Node tests. Pure functions, no DOM.
//
// The realtime service speaks PCM16, little-endian, mono, 24 kHz, base64 in JSON.
// The worklets keep their own copy of the resampling step (worklets cannot import
// modules reliably everywhere); this file is the tested reference for it.

export const SERVICE_RATE = 24000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Float samples in [-1, 1] to Int16, clamped and rounded to the nearest step. */
export function floatTo16BitPCM(input) {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    let s = input[i];
    if (!(s > -1)) s = s <= -1 ? -1 : 0; // also maps NaN to 0
    else if (s > 1) s = 1;
    out[i] = Math.round(s < 0 ? s * 0x8000 : s * 0x7fff);
  }
  return out;
}

/** Int16 samples to floats in [-1, 1]; the exact inverse of floatTo16BitPCM on its outputs. */
export function pcm16ToFloat32(input) {
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const v = input[i];
    out[i] = v < 0 ? v / 0x8000 : v / 0x7fff;
  }
  return out;
}

/** The little-endian bytes of Int16 samples (a view, not a copy, on little-endian hosts). */
export function bytesFromInt16(samples) {
  if (LITTLE_ENDIAN) return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i], true);
  return out;
}

/** Int16 samples from little-endian bytes; a trailing odd byte is ignored. */
export function int16FromBytes(bytes) {
  const n = bytes.length >> 1;
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Int16Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

const B64_CHUNK = 0x8000; // argument count limit of String.fromCharCode.apply stays far away

/** Base64 of bytes, built in chunks so large buffers do not overflow the call stack. */
export function base64FromBytes(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += B64_CHUNK) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + B64_CHUNK));
  }
  return btoa(binary);
}

/** Bytes of a base64 string. */
export function bytesFromBase64(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Milliseconds of `samples` samples at `rate` Hz (not rounded). */
export function msFromSamples(samples, rate = SERVICE_RATE) {
  return (samples * 1000) / rate;
}

/**
 * Streaming linear-interpolation resampler (default target 24 kHz).
 *
 * Positions are kept as exact integers in units of 1/outRate input samples, so
 * there is no drift however long the stream runs, and the last input sample of a
 * chunk is kept to interpolate across the boundary with the next one: feeding a
 * signal in many small chunks gives the same output as feeding it in one piece.
 * For N input samples in total it produces floor((N - 1) * outRate / inRate) + 1
 * samples. No anti-alias filter: for speech from a microphone that is acceptable.
 */
export class Resampler {
  constructor(inRate, outRate = SERVICE_RATE) {
    if (!(inRate > 0 && outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {
      throw new RangeError(`bad sample rates ${inRate} -> ${outRate}`);
    }
    this.inRate = inRate;
    this.outRate = outRate;
    this.reset();
  }

  /** Forget the stream: the next call starts a new signal. */
  reset() {
    // Virtual input: v[0] = last sample of the previous chunk, v[k + 1] = chunk[k].
    // `pos` is the next output position in v, times outRate.
    this.pos = this.outRate;
    this.prev = 0;
  }

  /** How many samples the next process() call on `n` input samples returns. */
  outputLength(n) {
    const end = n * this.outRate;
    return this.pos > end ? 0 : Math.floor((end - this.pos) / this.inRate) + 1;
  }

  process(input) {
    const n = input.length;
    const outRate = this.outRate;
    const step = this.inRate;
    const out = new Float32Array(this.outputLength(n));
    if (n === 0) return out;
    let pos = this.pos;
    const prev = this.prev;
    for (let j = 0; j < out.length; j++) {
      const i = Math.floor(pos / outRate);
      const r = pos - i * outRate;
      const a = i === 0 ? prev : input[i - 1];
      out[j] = r === 0 ? a : a + ((input[i] - a) * r) / outRate;
      pos += step;
    }
    this.pos = pos - n * outRate;
    this.prev = input[n - 1];
    return out;
  }
}

/** Whole samples at `rate` Hz in `ms` milliseconds (rounded down). */
export function samplesFromMs(ms, rate = SERVICE_RATE) {
  return Math.floor((ms * rate) / 1000 + 1e-9);
}

/**
 * The `audio_end_ms` to send when truncating an item: what the worklet counted as
 * played, never more than was received, in whole milliseconds rounded down (the
 * service refuses an end past the audio it sent).
 */
export function heardMs(playedSamples, receivedSamples, rate = SERVICE_RATE) {
  const heard = Math.max(0, Math.min(playedSamples, receivedSamples));
  return Math.floor(msFromSamples(heard, rate) + 1e-9);
}

/** Root mean square of `samples[start..end)`; 0 for an empty range. */
export function rms(samples, start = 0, end = samples.length) {
  const n = end - start;
  if (n <= 0) return 0;
  let sum = 0;
  for (let i = start; i < end; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / n);
}

/**
 * A 0..1 meter position for an RMS value of samples in [-1, 1]: decibels mapped
 * linearly from `floorDb` (0) to full scale (1), which matches how loud things sound
 * far better than the raw RMS does.
 */
export function levelFromRms(value, floorDb = -60) {
  if (!(value > 0)) return 0;
  const db = 20 * Math.log10(value);
  if (db <= floorDb) return 0;
  return Math.min(1, 1 - db / floorDb);
}
