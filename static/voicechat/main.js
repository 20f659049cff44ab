// The chat page: wires the socket, the microphone, playback and the transcript.
//
// The server bridges /ws/realtime/ to the realtime service and forwards its
// events unchanged (GA or preview shape); it adds one event of its own,
// {"type": "voicechat.conversation", "conversation_id", "engine"}, once the
// upstream session is open. The browser never sends session.update.

import { Capture } from './capture.js';
import { base64FromBytes, bytesFromBase64, bytesFromInt16, int16FromBytes, msFromSamples } from './pcm.js';
import { Playback } from './playback.js';
import { RealtimeSocket } from './socket.js';
import { StatusLine, Transcript } from './ui.js';

const AUDIO_DELTA = new Set(['response.output_audio.delta', 'response.audio.delta']);
const AUDIO_DONE = new Set(['response.output_audio.done', 'response.audio.done']);

const root = document.getElementById('voicechat');
const connectButton = document.getElementById('connect');
const recordButton = document.getElementById('record');
const engineEl = document.getElementById('engine');
const conversationLink = document.getElementById('conversation-link');
const status = new StatusLine(document.getElementById('status'));
const transcript = new Transcript(document.getElementById('transcript'));
const wsPath = root.dataset.wsPath || '/ws/realtime/';
const conversationUrlTemplate = root.dataset.conversationUrl || '/conversations/{id}/';

/** Live state for people and tests: window.voicechat. */
const debug = {
  state: 'disconnected', // 'disconnected' | 'connecting' | 'connected' (voice session open)
  recording: false,
  conversationId: null,
  engine: engineEl ? engineEl.textContent.trim() : '',
  error: null, // the last error message shown
  socketOpen: false,
  stats: { chunksSent: 0, audioDeltasReceived: 0, samplesPlayed: 0 },
};
window.voicechat = debug;

let socket = null;
let audioContext = null;
let playback = null;
let capture = null;
let userClosed = false;
// Barge-in bookkeeping: audio of items (and responses) cut short is not played any more.
let droppedItems = new Set();
let droppedResponses = new Set();
let openAudioItems = new Set(); // assistant items whose audio is still streaming in
let responseOfItem = new Map();
let bargingIn = false;

function setState(state) {
  debug.state = state;
  root.dataset.state = state;
  connectButton.textContent = state === 'disconnected' ? 'Connect' : 'Disconnect';
  recordButton.disabled = state !== 'connected';
  if (state !== 'connected') setRecording(false);
}

function setRecording(recording) {
  debug.recording = recording;
  recordButton.textContent = recording ? 'Stop Recording' : 'Start Recording';
  root.dataset.recording = recording ? 'true' : 'false';
}

function showError(message) {
  debug.error = message;
  status.set(message, 'error');
}

function connectedStatus() {
  if (debug.state === 'connected') status.set(debug.recording ? 'Connected · recording' : 'Connected', 'ok');
}

async function connect() {
  userClosed = false;
  debug.error = null;
  debug.conversationId = null;
  debug.stats.chunksSent = 0;
  debug.stats.audioDeltasReceived = 0;
  debug.stats.samplesPlayed = 0;
  droppedItems = new Set();
  droppedResponses = new Set();
  openAudioItems = new Set();
  responseOfItem = new Map();
  conversationLink.hidden = true;
  conversationLink.removeAttribute('href');
  transcript.reset();
  setState('connecting');
  status.set('Connecting…', 'busy');

  // Made inside the click so the browser lets it play sound; the device's own rate.
  try {
    audioContext = new AudioContext();
  } catch (error) {
    setState('disconnected');
    showError(`Audio is not available in this browser: ${error.message}`);
    return;
  }
  const context = audioContext;
  socket = new RealtimeSocket({ onEvent, onOpen, onClose });
  try {
    socket.connect(wsPath);
  } catch (error) {
    teardown();
    showError(`Could not connect: ${error.message}`);
    return;
  }
  try {
    if (context.state === 'suspended') await context.resume();
    const p = new Playback(context, {
      onPlayed: (_itemId, _total, delta) => {
        debug.stats.samplesPlayed += delta;
      },
    });
    await p.init();
    if (audioContext !== context) {
      p.close(); // disconnected meanwhile
      return;
    }
    playback = p;
  } catch (error) {
    if (audioContext !== context) return;
    teardown();
    showError(`Could not start audio playback: ${error.message}`);
  }
}

function onOpen() {
  // The server opens the voice service session after accepting the socket; audio
  // sent before that would be dropped, so recording waits for the session.
  debug.socketOpen = true;
  if (!debug.error) status.set('Connecting to the voice service…', 'busy');
}

/** The voice session is open (voicechat.conversation, or the service's own session.created). */
function sessionReady() {
  if (debug.state !== 'connecting' || !socket) return;
  setState('connected');
  if (!debug.error) status.set('Connected', 'ok');
}

function onClose({ code, opened }) {
  const error = debug.error;
  teardown();
  if (error) {
    showError(`Disconnected: ${error}`);
  } else if (!opened) {
    showError('Could not connect to the server (are you still logged in?).');
  } else if (code === 1000 || userClosed) {
    status.set('Disconnected', 'info');
  } else {
    showError(`Connection closed (code ${code}).`);
  }
}

function disconnect() {
  userClosed = true;
  teardown();
  status.set('Disconnected', 'info');
}

/** Back to the disconnected state: socket, microphone and audio all released. */
function teardown() {
  if (socket) {
    const s = socket;
    socket = null;
    s.close();
  }
  if (capture) {
    const c = capture;
    capture = null;
    c.stop().catch(() => {});
  }
  if (playback) {
    playback.close();
    playback = null;
  }
  if (audioContext) {
    const context = audioContext;
    audioContext = null;
    context.close().catch(() => {});
  }
  openAudioItems.clear();
  bargingIn = false;
  debug.socketOpen = false;
  setState('disconnected');
}

async function startRecording() {
  if (!audioContext || !socket) return;
  const c = new Capture({ context: audioContext, onChunk: sendChunk, onEnded: micEnded });
  capture = c;
  setRecording(true);
  connectedStatus();
  try {
    await c.start();
  } catch (error) {
    if (capture !== c) return;
    capture = null;
    setRecording(false);
    const reason = error && error.name === 'NotAllowedError' ? 'permission was refused' : error.message;
    showError(`Microphone not available: ${reason}`);
  }
}

async function stopRecording() {
  const c = capture;
  capture = null;
  setRecording(false);
  connectedStatus();
  if (c) await c.stop();
}

function micEnded(error) {
  capture = null;
  setRecording(false);
  showError(error.message);
}

function sendChunk(int16) {
  if (!socket) return;
  const audio = base64FromBytes(bytesFromInt16(int16));
  if (socket.send({ type: 'input_audio_buffer.append', audio })) debug.stats.chunksSent++;
}

function onEvent(event) {
  const type = event.type;
  if (AUDIO_DELTA.has(type)) {
    onAudioDelta(event);
    return;
  }
  if (AUDIO_DONE.has(type)) {
    openAudioItems.delete(event.item_id);
    playback?.end(event.item_id);
  } else if (type === 'input_audio_buffer.speech_started') {
    bargeIn();
  } else if (type === 'response.done') {
    for (const item of event.response?.output ?? []) {
      if (item && openAudioItems.delete(item.id)) playback?.end(item.id);
    }
    const details = event.response?.status_details;
    if (event.response?.status === 'failed' && details?.error?.message) showError(details.error.message);
  } else if (type === 'voicechat.conversation') {
    onConversation(event);
    sessionReady();
  } else if (type === 'session.created' || type === 'session.updated') {
    sessionReady();
  } else if (type === 'error') {
    const message = event.error?.message || event.error?.code || 'Unknown error from the voice service.';
    showError(message);
  }
  transcript.handleEvent(event);
}

function onConversation(event) {
  const id = event.conversation_id;
  if (id !== null && id !== undefined) {
    debug.conversationId = id;
    conversationLink.href = conversationUrlTemplate.replace('{id}', encodeURIComponent(String(id)));
    conversationLink.textContent = `Saved as conversation #${id}`;
    conversationLink.hidden = false;
  }
  if (typeof event.engine === 'string' && event.engine) {
    debug.engine = event.engine;
    if (engineEl) engineEl.textContent = event.engine;
  }
}

function onAudioDelta(event) {
  debug.stats.audioDeltasReceived++;
  const itemId = event.item_id;
  if (!playback || typeof event.delta !== 'string' || !itemId) return;
  if (droppedItems.has(itemId) || (event.response_id && droppedResponses.has(event.response_id))) return;
  if (event.response_id) responseOfItem.set(itemId, event.response_id);
  openAudioItems.add(itemId);
  playback.push(itemId, int16FromBytes(bytesFromBase64(event.delta)));
}

/**
 * The user started speaking: if assistant audio is playing or queued (or still
 * streaming in), stop it at once and tell the service how much was heard.
 */
async function bargeIn() {
  if (!playback || bargingIn) return;
  const queued = playback.queuedItemIds;
  let target = queued[0] ?? null;
  if (!target) {
    for (const id of openAudioItems) {
      if (playback.receivedSamples(id) > 0) {
        target = id;
        break;
      }
    }
  }
  if (!target) return;
  // From now on, late audio of what is being cut off must not play.
  for (const id of [...queued, ...openAudioItems]) {
    droppedItems.add(id);
    const responseId = responseOfItem.get(id);
    if (responseId) droppedResponses.add(responseId);
  }
  openAudioItems.clear();
  bargingIn = true;
  const p = playback;
  try {
    await p.clear();
  } finally {
    bargingIn = false;
  }
  if (playback !== p || !socket) return;
  // The worklet's count of samples actually output, never more than was received.
  const heard = Math.min(p.playedMs(target), msFromSamples(p.receivedSamples(target)));
  const audioEndMs = Math.max(0, Math.floor(heard));
  socket.send({ type: 'conversation.item.truncate', item_id: target, content_index: 0, audio_end_ms: audioEndMs });
  transcript.markInterrupted(target, audioEndMs);
}

connectButton.addEventListener('click', () => {
  if (debug.state === 'disconnected') connect();
  else disconnect();
});

recordButton.addEventListener('click', () => {
  if (debug.state !== 'connected') return;
  if (debug.recording) stopRecording();
  else startRecording();
});

window.addEventListener('pagehide', () => {
  if (debug.state !== 'disconnected') disconnect();
});

setState('disconnected');
// The button is rendered disabled so a click cannot land before this module has run.
connectButton.disabled = false;
