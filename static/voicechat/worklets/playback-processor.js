// AudioWorkletProcessor "playback-processor": queued assistant audio -> speakers,
// counting what was actually heard.
//
// Resampling is done on the MAIN thread (playback.js, with Resampler from pcm.js):
// this processor only holds a ring buffer of Float32 samples at the context rate.
//
// Port messages in:
//   {type: 'push', itemId, samples: Float32Array (context rate), samples24k}
//       samples24k is how many 24 kHz service samples these samples came from; it is
//       what the played counts are made of, so they never exceed what was received.
//   {type: 'end', itemId}   no more audio will come for this item (so a short tail
//                           plays without waiting, and running dry is "drained"
//                           rather than an underrun)
//   {type: 'clear'}         drop everything queued and stop at once
//   {type: 'close'}         end the processor
// Port messages out:
//   {type: 'played', itemId, samples24k}   24 kHz samples of itemId output so far;
//                           at most every ~50 ms while playing, at once when an item
//                           ends, when the queue runs dry and on clear
//   {type: 'started', itemId}   playback (re)starts after being empty
//   {type: 'underrun', frames}  ran dry while more audio was expected
//   {type: 'drained', frames}   played everything of an item marked with 'end'
//   {type: 'cleared', itemId, samples24k, queued}   answer to 'clear': the item that
//                           was playing (or last played) and its final count
//   a bare number           the output level: RMS over ~100 ms (numbers, not objects,
//                           so the audio thread builds no garbage for them); posted
//                           while sound plays and once more when it falls silent
// `frames` is every queued sample output since the processor began (context rate).
//
// Jitter: audio arrives in network-sized pieces (often 100 ms) at uneven times. A
// threshold on the amount buffered would start at once on a first 100 ms piece and
// run dry when the next one is late, so the start waits a fixed time after the first
// sample arrives instead: a piece up to PREBUFFER_SECONDS late then still plays on
// time. When the service sends faster than real time, BURST_SECONDS already buffered
// starts at once (it is ahead of any jitter by then). After an underrun the same wait
// applies again. Samples of consecutive pushes are contiguous in the ring, so chunk
// boundaries do not click; stopping abruptly (clear, underrun) ramps the last output
// value to zero over ~1 ms. Buffers only grow in the message handler, never in process().

const PREBUFFER_SECONDS = 0.1;
const BURST_SECONDS = 0.2;
const REPORT_SECONDS = 0.05;
const LEVEL_SECONDS = 0.1;
const FADE_SAMPLES = 48;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ring = new Float32Array(Math.ceil(sampleRate * 20));
    this.readIdx = 0;
    this.writeIdx = 0;
    this.available = 0;

    this.segCap = 1024;
    this.segItem = new Array(this.segCap);
    this.segLen = new Int32Array(this.segCap); // context-rate samples
    this.seg24k = new Int32Array(this.segCap); // 24 kHz samples they came from
    this.segHead = 0;
    this.segCount = 0;
    this.headPlayed = 0; // context-rate samples of the head segment already output

    this.curItem = null; // invariant: while segCount > 0, segItem[segHead] === curItem
    this.curDone24k = 0; // 24 kHz samples of curItem in segments fully played
    this.endedItem = null;
    this.primed = false;
    this.waitFrom = 0; // currentFrame when audio arrived in the empty queue
    this.prebuffer = Math.round(sampleRate * PREBUFFER_SECONDS);
    this.burst = Math.round(sampleRate * BURST_SECONDS);
    this.reportEvery = Math.round(sampleRate * REPORT_SECONDS);
    this.sinceReport = 0;
    this.dirty = false;
    this.framesOut = 0;
    this.levelEvery = Math.round(sampleRate * LEVEL_SECONDS);
    this.levelSum = 0;
    this.levelCount = 0;
    this.levelShown = false; // the last level posted was above zero
    this.lastOut = 0;
    this.fadeFrom = 0;
    this.fadeLeft = 0;
    this.alive = true;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  played24k() {
    let n = this.curDone24k;
    if (this.segCount > 0 && this.headPlayed > 0) {
      const h = this.segHead;
      n += Math.floor((this.headPlayed * this.seg24k[h]) / this.segLen[h]);
    }
    return n;
  }

  report() {
    this.sinceReport = 0;
    this.dirty = false;
    if (this.curItem !== null) {
      this.port.postMessage({ type: 'played', itemId: this.curItem, samples24k: this.played24k() });
    }
  }

  onMessage(m) {
    if (!m) return;
    switch (m.type) {
      case 'push':
        this.push(m.itemId, m.samples, m.samples24k | 0);
        break;
      case 'end':
        this.endedItem = m.itemId;
        break;
      case 'clear': {
        const itemId = this.curItem;
        const samples24k = this.played24k();
        const queued = this.segCount > 0;
        this.report();
        this.port.postMessage({ type: 'cleared', itemId, samples24k, queued });
        this.curDone24k = samples24k;
        this.readIdx = 0;
        this.writeIdx = 0;
        this.available = 0;
        for (let k = 0; k < this.segCount; k++) this.segItem[(this.segHead + k) % this.segCap] = undefined;
        this.segHead = 0;
        this.segCount = 0;
        this.headPlayed = 0;
        if (this.primed) this.startFade(this.lastOut);
        this.primed = false;
        break;
      }
      case 'close':
        this.alive = false;
        break;
      default:
        break;
    }
  }

  push(itemId, samples, samples24k) {
    const n = samples ? samples.length : 0;
    if (n === 0) return;
    if (this.available === 0 && !this.primed) this.waitFrom = currentFrame;
    if (this.available + n > this.ring.length) this.growRing(this.available + n);
    if (this.segCount === this.segCap) this.growSegments();

    const ring = this.ring;
    const cap = ring.length;
    const first = Math.min(n, cap - this.writeIdx);
    ring.set(first === n ? samples : samples.subarray(0, first), this.writeIdx);
    if (first < n) ring.set(samples.subarray(first), 0);
    this.writeIdx = (this.writeIdx + n) % cap;
    this.available += n;

    if (this.segCount === 0 && itemId !== this.curItem) {
      if (this.curItem !== null && this.dirty) this.report();
      this.curItem = itemId;
      this.curDone24k = 0;
    }
    const t = (this.segHead + this.segCount) % this.segCap;
    this.segItem[t] = itemId;
    this.segLen[t] = n;
    this.seg24k[t] = samples24k;
    this.segCount++;
  }

  growRing(needed) {
    let cap = this.ring.length * 2;
    while (cap < needed) cap *= 2;
    const ring = new Float32Array(cap);
    const old = this.ring;
    const first = Math.min(this.available, old.length - this.readIdx);
    ring.set(old.subarray(this.readIdx, this.readIdx + first), 0);
    if (first < this.available) ring.set(old.subarray(0, this.available - first), first);
    this.ring = ring;
    this.readIdx = 0;
    this.writeIdx = this.available;
  }

  growSegments() {
    const cap = this.segCap * 2;
    const item = new Array(cap);
    const len = new Int32Array(cap);
    const n24 = new Int32Array(cap);
    for (let k = 0; k < this.segCount; k++) {
      const s = (this.segHead + k) % this.segCap;
      item[k] = this.segItem[s];
      len[k] = this.segLen[s];
      n24[k] = this.seg24k[s];
    }
    this.segItem = item;
    this.segLen = len;
    this.seg24k = n24;
    this.segHead = 0;
    this.segCap = cap;
  }

  /** The head segment has been fully output: account for it and move on. */
  advance() {
    const h = this.segHead;
    this.curDone24k += this.seg24k[h];
    this.segItem[h] = undefined;
    this.segHead = (h + 1) % this.segCap;
    this.segCount--;
    this.headPlayed = 0;
    if (this.segCount > 0 && this.segItem[this.segHead] !== this.curItem) {
      this.report(); // final count of the item that just finished
      this.curItem = this.segItem[this.segHead];
      this.curDone24k = 0;
    }
  }

  tailEnded() {
    if (this.segCount === 0 || this.endedItem === null) return false;
    return this.segItem[(this.segHead + this.segCount - 1) % this.segCap] === this.endedItem;
  }

  startFade(from) {
    this.fadeFrom = from;
    this.fadeLeft = from === 0 ? 0 : FADE_SAMPLES;
  }

  process(inputs, outputs) {
    if (!this.alive) return false;
    const output = outputs[0];
    if (!output || output.length === 0) return true;
    const out = output[0];
    const n = out.length;
    let i = 0;

    if (
      !this.primed &&
      this.available > 0 &&
      (currentFrame - this.waitFrom >= this.prebuffer || this.available >= this.burst || this.tailEnded())
    ) {
      this.primed = true;
      this.fadeLeft = 0;
      this.port.postMessage({ type: 'started', itemId: this.curItem });
    }

    if (this.primed) {
      const ring = this.ring;
      const cap = ring.length;
      while (i < n && this.available > 0) {
        const k = Math.min(n - i, this.available, this.segLen[this.segHead] - this.headPlayed);
        let r = this.readIdx;
        for (let j = 0; j < k; j++) {
          out[i++] = ring[r++];
          if (r === cap) r = 0;
        }
        this.readIdx = r;
        this.available -= k;
        this.headPlayed += k;
        this.framesOut += k;
        this.dirty = true;
        if (this.headPlayed === this.segLen[this.segHead]) this.advance();
      }
      if (this.available === 0) {
        // Ran dry: everything queued has now been output.
        const drained = this.endedItem !== null && this.endedItem === this.curItem;
        this.primed = false;
        this.report();
        this.port.postMessage({ type: drained ? 'drained' : 'underrun', frames: this.framesOut });
        this.startFade(i > 0 ? out[i - 1] : this.lastOut);
      }
    }

    for (; i < n; i++) {
      if (this.fadeLeft > 0) {
        out[i] = (this.fadeFrom * this.fadeLeft) / (FADE_SAMPLES + 1);
        this.fadeLeft--;
      } else {
        out[i] = 0;
      }
    }
    this.lastOut = out[n - 1];
    for (let c = 1; c < output.length; c++) output[c].set(out);

    let squares = 0;
    for (let j = 0; j < n; j++) squares += out[j] * out[j];
    this.levelSum += squares;
    this.levelCount += n;
    if (this.levelCount >= this.levelEvery) {
      const level = Math.sqrt(this.levelSum / this.levelCount);
      // Silence is posted once, not every 100 ms while nothing plays.
      if (level > 0 || this.levelShown) this.port.postMessage(level);
      this.levelShown = level > 0;
      this.levelSum = 0;
      this.levelCount = 0;
    }

    this.sinceReport += n;
    if (this.dirty && this.sinceReport >= this.reportEvery) this.report();
    return true;
  }
}

registerProcessor('playback-processor', PlaybackProcessor);
