// Microphone capture: getUserMedia -> capture-processor worklet -> 24 kHz PCM16 chunks.
//
// The AudioContext runs at the device's default rate (no forced 24 kHz: several
// browsers refuse or glitch when a MediaStream source and the context rates
// differ); the worklet resamples to 24 kHz and posts 40 ms chunks.

export const AUDIO_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  channelCount: 1,
};

const STOP_TIMEOUT_MS = 200;

export class Capture {
  /**
   * @param {object} options
   * @param {(chunk: Int16Array) => void} options.onChunk called with each 960-sample chunk
   *   (40 ms at 24 kHz). The array is only valid during the call: its buffer is
   *   handed back to the worklet afterwards. Copy it to keep it.
   * @param {AudioContext} [options.context] a context to use; when missing, one is
   *   created (call start() from a click handler) and closed by stop()
   * @param {(error: Error) => void} [options.onEnded] the microphone went away
   */
  constructor({ onChunk, context = null, onEnded = null } = {}) {
    this.onChunk = onChunk;
    this.context = context;
    this.ownsContext = context === null;
    this.onEnded = onEnded;
    this.stream = null;
    this.source = null;
    this.node = null;
    this.running = false;
    this.chunks = 0;
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
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS });
      if (!this.running) {
        this.releaseStream();
        return;
      }
      await this.context.audioWorklet.addModule(new URL('./worklets/capture-processor.js', import.meta.url));
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

  releaseStream() {
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
  }

  onMessage(event) {
    const m = event.data;
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
          if (event.data.type === 'stopped') {
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
