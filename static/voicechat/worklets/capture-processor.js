// AudioWorkletProcessor "capture-processor": microphone -> 24 kHz PCM16 chunks.
//
// Runs at the context's own rate (the global `sampleRate`, 44.1 or 48 kHz on most
// devices), downmixes every input channel to mono, resamples to 24 kHz (the same
// streaming linear interpolation as Resampler in ../pcm.js, copied because worklets
// cannot import modules reliably in every browser), converts to Int16 and posts
// chunks of 960 samples (40 ms) as transferable ArrayBuffers: {type: 'chunk', buffer}.
//
// It also measures the input level: the RMS of the mono signal over ~100 ms,
// posted as a bare number (the same as rms() in ../pcm.js). A number, not an
// object, so that the audio thread builds no garbage for it.
//
// Nothing is allocated in process() once running: chunk buffers come from a pool
// the main thread refills by sending the buffers back ({type: 'recycle', buffer});
// only when the pool is empty (the main thread keeps them) is a new one made.
// {type: 'flush'} posts what is buffered as a shorter chunk, then {type: 'flushed'}:
// push-to-talk uses it so the last words before the release are not held back.
// {type: 'stop'} does the same, answers {type: 'stopped'} and ends the processor.

const OUT_RATE = 24000;
const CHUNK_SAMPLES = 960;
const POOL_SIZE = 16;
const LEVEL_SECONDS = 0.1;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.inRate = Math.round(sampleRate);
    // Resampler state, as in pcm.js: v[0] = previous block's last sample, v[k + 1] = block[k].
    this.pos = OUT_RATE;
    this.prev = 0;
    this.mono = new Float32Array(128);
    this.pool = new Array(POOL_SIZE);
    this.poolCount = 0;
    for (let i = 0; i < POOL_SIZE; i++) this.pool[this.poolCount++] = new ArrayBuffer(CHUNK_SAMPLES * 2);
    this.chunk = this.take();
    this.fill = 0;
    this.levelEvery = Math.max(1, Math.round(sampleRate * LEVEL_SECONDS));
    this.levelSum = 0;
    this.levelCount = 0;
    this.running = true;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  take() {
    const buffer = this.poolCount > 0 ? this.pool[--this.poolCount] : new ArrayBuffer(CHUNK_SAMPLES * 2);
    this.pool[this.poolCount] = undefined;
    return new Int16Array(buffer);
  }

  onMessage(message) {
    if (!message) return;
    if (message.type === 'recycle') {
      const buffer = message.buffer;
      if (buffer instanceof ArrayBuffer && buffer.byteLength === CHUNK_SAMPLES * 2 && this.poolCount < POOL_SIZE) {
        this.pool[this.poolCount++] = buffer;
      }
    } else if (message.type === 'flush') {
      this.postRest();
      this.port.postMessage({ type: 'flushed' });
    } else if (message.type === 'stop') {
      this.postRest();
      this.running = false;
      this.port.postMessage({ type: 'stopped' });
    }
  }

  /** Post the part-filled chunk, if any (a copy: the full-size buffer stays for reuse). */
  postRest() {
    if (this.running && this.fill > 0) {
      const rest = this.chunk.slice(0, this.fill);
      this.port.postMessage({ type: 'chunk', buffer: rest.buffer }, [rest.buffer]);
    }
    this.fill = 0;
  }

  emit(sample) {
    // Float [-1, 1] -> Int16, clamped and rounded, as floatTo16BitPCM in pcm.js.
    let s = sample;
    if (!(s > -1)) s = s <= -1 ? -1 : 0;
    else if (s > 1) s = 1;
    this.chunk[this.fill++] = Math.round(s < 0 ? s * 0x8000 : s * 0x7fff);
    if (this.fill === CHUNK_SAMPLES) {
      const buffer = this.chunk.buffer;
      this.port.postMessage({ type: 'chunk', buffer }, [buffer]);
      this.chunk = this.take();
      this.fill = 0;
    }
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true; // not connected (yet): keep waiting
    const n = input[0].length;
    if (this.mono.length < n) this.mono = new Float32Array(n); // only if the render quantum grows
    const mono = this.mono;
    const channels = input.length;
    if (channels === 1) {
      mono.set(input[0]);
    } else {
      const scale = 1 / channels;
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += input[c][i];
        mono[i] = sum * scale;
      }
    }

    let squares = 0;
    for (let i = 0; i < n; i++) squares += mono[i] * mono[i];
    this.levelSum += squares;
    this.levelCount += n;
    if (this.levelCount >= this.levelEvery) {
      this.port.postMessage(Math.sqrt(this.levelSum / this.levelCount));
      this.levelSum = 0;
      this.levelCount = 0;
    }

    const end = n * OUT_RATE;
    const step = this.inRate;
    const prev = this.prev;
    let pos = this.pos;
    while (pos <= end) {
      const i = Math.floor(pos / OUT_RATE);
      const r = pos - i * OUT_RATE;
      const a = i === 0 ? prev : mono[i - 1];
      this.emit(r === 0 ? a : a + ((mono[i] - a) * r) / OUT_RATE);
      pos += step;
    }
    this.pos = pos - end;
    this.prev = mono[n - 1];
    return true;
  }
}

registerProcessor('capture-processor', CaptureProcessor);
