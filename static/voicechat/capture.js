// Microphone capture: getUserMedia -> capture-processor worklet -> 24 kHz PCM16 chunks.
//
// The AudioContext runs at the device's default rate (no forced 24 kHz: several
// browsers refuse or glitch when a MediaStream source and the context rates
// differ); the worklet resamples to 24 kHz and posts 40 ms chunks, and the input
// level a few times a second.

export const AUDIO_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  channelCount: 1,
};

const STOP_TIMEOUT_MS = 200;
const FLUSH_TIMEOUT_MS = 200;

/** getUserMedia constraints for a device id ('' or null: the system default). */
export function audioConstraints(deviceId = null) {
  return deviceId ? { ...AUDIO_CONSTRAINTS, deviceId: { exact: deviceId } } : { ...AUDIO_CONSTRAINTS };
}

/**
 * The `voicechat.client_info` audio description from a track's getSettings(): what
 * the browser really applied, which is not always what was asked for. The context
 * rate stands in when the track does not report one (Firefox, Safari).
 */
export function describeAudio(settings, { label = '', contextRate = null } = {}) {
  const s = settings ?? {};
  const audio = {};
  for (const key of ['echoCancellation', 'noiseSuppression', 'autoGainControl']) {
    if (typeof s[key] === 'boolean') audio[key] = s[key];
  }
  const rate = Number.isFinite(s.sampleRate) && s.sampleRate > 0 ? s.sampleRate : contextRate;
  if (Number.isFinite(rate) && rate > 0) audio.sampleRate = Math.round(rate);
  if (Number.isFinite(s.channelCount) && s.channelCount > 0) audio.channelCount = s.channelCount;
  // The server keeps short values only (labels can be long on some systems).
  audio.deviceLabel = typeof label === 'string' ? label.slice(0, 200) : '';
  return audio;
}

export class Capture {
  /**
   * @param {object} options
   * @param {(chunk: Int16Array) => void} options.onChunk called with each 960-sample chunk
   *   (40 ms at 24 kHz; shorter on flush and stop). The array is only valid during the
   *   call: its buffer is handed back to the worklet afterwards. Copy it to keep it.
   * @param {AudioContext} [options.context] a context to use; when missing, one is
   *   created (call start() from a click handler) and closed by stop()
   * @param {string} [options.deviceId] the microphone to open ('' or null: the default)
   * @param {(rms: number) => void} [options.onLevel] the input level, ~10 times a second
   * @param {(error: Error) => void} [options.onEnded] the microphone went away
   * @param {string|URL} [options.workletUrl] the capture-processor module; the page gives the
   *   URL its template made ({% static %}: a hashed name in production), beside this file when missing
   */
  constructor({ onChunk, context = null, deviceId = null, onLevel = null, onEnded = null, workletUrl = null } = {}) {
    this.onChunk = onChunk;
    this.workletUrl = workletUrl || new URL('./worklets/capture-processor.js', import.meta.url);
    this.context = context;
    this.ownsContext = context === null;
    this.deviceId = deviceId || null;
    this.onLevel = onLevel;
    this.onEnded = onEnded;
    this.stream = null;
    this.source = null;
    this.node = null;
    this.running = false;
    this.chunks = 0;
    this.flushes = [];
  }

  async start() {
    if (this.running) return;
    this.running = true;
    try {
      if (!this.context) {
        this.context = new AudioContext();
        this.ownsContext = true;
      }
      if (this.context.state === 'suspended') await this.context.resume();
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(this.deviceId) });
      if (!this.running) {
        this.releaseStream();
        return;
      }
      await this.context.audioWorklet.addModule(this.workletUrl);
      if (!this.running) {
        this.releaseStream();
        return;
      }
      this.source = this.context.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.context, 'capture-processor', {
        numberOfInputs: 1,
        numberOfOutputs: 0,
      });
      this.node.port.onmessage = (event) => this.onMessage(event);
      this.source.connect(this.node);
      for (const track of this.stream.getAudioTracks()) {
        track.addEventListener('ended', () => {
          if (!this.running) return;
          this.stop();
          this.onEnded?.(new Error('The microphone was disconnected.'));
        });
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The open microphone track, or null. */
  get track() {
    return this.stream?.getAudioTracks()[0] ?? null;
  }

  /** What the browser applied to the microphone, for voicechat.client_info. */
  describe() {
    const track = this.track;
    if (!track) return null;
    const settings = typeof track.getSettings === 'function' ? track.getSettings() : {};
    return describeAudio(settings, { label: track.label, contextRate: this.context?.sampleRate ?? null });
  }

  /** The id of the device really opened (the default resolves to a concrete one). */
  get activeDeviceId() {
    const track = this.track;
    const settings = track && typeof track.getSettings === 'function' ? track.getSettings() : {};
    return settings.deviceId ?? this.deviceId;
  }

  releaseStream() {
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
  }

  onMessage(event) {
    const m = event.data;
    if (typeof m === 'number') {
      this.onLevel?.(m);
      return;
    }
    if (m.type === 'flushed') {
      this.flushes.shift()?.();
      return;
    }
    if (m.type !== 'chunk') return;
    const chunk = new Int16Array(m.buffer);
    this.chunks++;
    try {
      this.onChunk?.(chunk);
    } finally {
      // Hand the buffer back to the worklet's pool (only full-size ones are kept).
      event.target.postMessage({ type: 'recycle', buffer: m.buffer }, [m.buffer]);
    }
  }

  /**
   * Deliver what the worklet holds (less than a chunk) to onChunk now; resolves
   * once it has been delivered, or after a short timeout if the worklet is silent.
   */
  flush() {
    const node = this.node;
    if (!node) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const k = this.flushes.indexOf(done);
        if (k >= 0) this.flushes.splice(k, 1);
        resolve();
      }, FLUSH_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.flushes.push(done);
      node.port.postMessage({ type: 'flush' });
    });
  }

  /**
   * Stop capturing and release the microphone (the browser's recording indicator
   * goes off at once); the last partial chunk is still delivered to onChunk.
   */
  async stop() {
    this.running = false;
    this.releaseStream();
    const node = this.node;
    this.node = null;
    if (node) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
        node.port.onmessage = (event) => {
          if (event.data?.type === 'stopped') {
            clearTimeout(timer);
            resolve();
          } else {
            this.onMessage(event);
          }
        };
        node.port.postMessage({ type: 'stop' });
      });
      node.port.onmessage = null;
      node.disconnect();
    }
    for (const done of this.flushes.splice(0)) done();
    if (this.source) {
      this.source.disconnect();
      this.source = null;
    }
    if (this.ownsContext && this.context) {
      const context = this.context;
      this.context = null;
      if (context.state !== 'closed') await context.close();
    }
  }
}
