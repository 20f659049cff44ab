// The chat page: wires the socket, the microphone, playback, the controls and the
// transcript.
//
// The server bridges /ws/realtime/ to the realtime service and forwards its
// events unchanged (GA or preview shape). Its own events are voicechat.*:
// conversation (once the service session is open), mode (answer to ours),
// notice (something to show that is not an error). The browser sends
// voicechat.mode, voicechat.talk and voicechat.client_info of its own, and never
// session.update: the server owns the session configuration.

import { Capture } from './capture.js';
import { base64FromBytes, bytesFromBase64, bytesFromInt16, heardMs, int16FromBytes, levelFromRms } from './pcm.js';
import { Playback } from './playback.js';
import { ReconnectingSocket, withConversation } from './socket.js';
import { Notice, StatusLine, Transcript, VoiceIndicator, formatSeconds, isTextEntry } from './ui.js';

const AUDIO_DELTA = new Set(['response.output_audio.delta', 'response.audio.delta']);
const AUDIO_DONE = new Set(['response.output_audio.done', 'response.audio.done']);
const MODES = ['hands_free', 'push_to_talk'];
const DEFAULT_MODE = 'hands_free';
// Races the page cannot avoid (a cancel just after the reply ended): nothing to tell.
const QUIET_ERRORS = new Set(['response_cancel_not_active']);
// Not failures of the conversation: said in the status line, not as an error.
const SOFT_ERRORS = {
  input_audio_buffer_commit_empty: 'Nothing was heard: hold the button while you speak.',
  conversation_already_has_active_response: 'Still answering: wait for the reply to end.',
  session_expired: 'The voice session expired; renewing it…',
};
const STORED_MODE = 'voicechat.mode';
const STORED_MICROPHONE = 'voicechat.microphone';

const $ = (id) => document.getElementById(id);
const root = $('voicechat');
const connectButton = $('connect');
const recordButton = $('record');
const muteButton = $('mute');
const talkArea = $('talk-area');
const talkButton = $('talk');
const microphoneSelect = $('microphone');
const modeInputs = [...document.querySelectorAll('input[name="mode"]')];
const composer = $('composer');
const messageInput = $('message');
const sendButton = $('send');
const engineEl = $('engine');
const conversationLink = $('conversation-link');
const status = new StatusLine($('status'));
const notice = new Notice($('notice'));
const transcript = new Transcript($('transcript'));
const userVoice = new VoiceIndicator($('user-voice'));
const assistantVoice = new VoiceIndicator($('assistant-voice'));
const wsPath = root.dataset.wsPath || '/ws/realtime/';
const conversationUrlTemplate = root.dataset.conversationUrl || '/conversations/{id}/';
// The worklet modules by the URLs the template made: with hashed static names in production,
// these are not the plain names beside capture.js and playback.js.
const captureWorkletUrl = root.dataset.captureWorklet || null;
const playbackWorkletUrl = root.dataset.playbackWorklet || null;

function stored(key, fallback) {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback; // storage blocked: fine, nothing is remembered
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // storage blocked: the choice holds for this page only
  }
}

/** Live state for people and tests: window.voicechat. */
const debug = {
  state: 'disconnected', // 'disconnected' | 'connecting' | 'connected' | 'reconnecting'
  recording: false, // the microphone is open
  muted: false,
  mode: null, // the turn taking the server confirmed: 'hands_free' | 'push_to_talk'
  preferredMode: MODES.includes(stored(STORED_MODE, '')) ? stored(STORED_MODE, '') : DEFAULT_MODE,
  talking: false, // push-to-talk held
  userSpeaking: false,
  assistantSpeaking: false,
  conversationId: null,
  engine: engineEl ? engineEl.textContent.trim() : '',
  error: null, // the last error message shown
  insecureContext: false, // not a secure page: no microphone, Connect stays off
  notice: null, // the last notice shown
  socketOpen: false,
  socketPaths: [], // every socket path opened, in order
  reconnectAttempt: 0, // of the reconnect under way, from 1; 0 when none
  reconnects: 0, // sessions resumed after a lost connection
  lastClose: null, // {code, reason} of the last connection that was lost or closed
  inputLevel: 0, // RMS, 0..1
  outputLevel: 0,
  microphoneId: stored(STORED_MICROPHONE, ''), // chosen ('' for the default)
  activeMicrophone: null, // the device id of the open microphone
  microphones: [], // [{deviceId, label}]
  clientInfo: null, // the voicechat.client_info sent for this conversation
  lastTruncate: null, // {itemId, audioEndMs, playedSamples, receivedSamples}
  items: {}, // itemId -> {receivedSamples, playedSamples}, 24 kHz samples of assistant audio
  stats: { chunksSent: 0, audioDeltasReceived: 0, samplesPlayed: 0, underruns: 0, truncates: 0 },
};
window.voicechat = debug;

let socket = null;
let audioContext = null;
let playback = null;
let capture = null;
let clientInfoSentFor = null;
let modeRequests = 0; // voicechat.mode sent and not answered yet
let lastRequestedMode = null;
let talkState = 'idle'; // 'idle' | 'held' | 'releasing' (flushing the last audio)
let talkSource = null; // 'pointer' | 'key'
let activeResponseId = null;
let pendingResponseCreate = false; // a typed message waits for the cancelled reply to end
// Barge-in bookkeeping: audio of items (and responses) cut short is not played any more.
let droppedItems = new Set();
let droppedResponses = new Set();
let openAudioItems = new Set(); // assistant items whose audio is still streaming in
let responseOfItem = new Map();
let bargingIn = null; // the barge-in under way (a promise)

// ---------------------------------------------------------------- rendering

function render() {
  const { state } = debug;
  const live = state === 'connected' || state === 'reconnecting';
  const ptt = debug.preferredMode === 'push_to_talk';
  root.dataset.state = state;
  root.dataset.mode = debug.preferredMode;
  root.dataset.recording = String(debug.recording);
  root.dataset.muted = String(debug.muted);
  root.dataset.talking = String(debug.talking);
  connectButton.textContent = state === 'disconnected' ? 'Connect' : 'Disconnect';
  recordButton.disabled = !live;
  recordButton.textContent = debug.recording ? 'Stop Recording' : 'Start Recording';
  muteButton.disabled = !live;
  muteButton.setAttribute('aria-pressed', String(debug.muted));
  muteButton.textContent = debug.muted ? 'Unmute' : 'Mute';
  for (const input of modeInputs) input.checked = input.value === debug.preferredMode;
  talkArea.hidden = !ptt;
  talkButton.disabled = state !== 'connected';
  talkButton.setAttribute('aria-pressed', String(debug.talking));
  talkButton.textContent = debug.talking ? 'Talking… release to send' : 'Hold to talk';
  sendButton.disabled = state !== 'connected';
  userVoice.setMuted(debug.muted);
}

function setState(state) {
  debug.state = state;
  if (state === 'disconnected') {
    debug.recording = false;
    debug.socketOpen = false;
    debug.reconnectAttempt = 0;
  }
  if (state !== 'connected') resetTalk();
  render();
}

function showError(message) {
  debug.error = message;
  status.set(message, 'error');
}

function connectedStatus() {
  if (debug.state !== 'connected') return;
  let text = 'Connected';
  if (debug.recording) text += debug.muted ? ' · recording (muted)' : ' · recording';
  status.set(text, 'ok');
}

function setUserSpeaking(speaking) {
  debug.userSpeaking = speaking;
  userVoice.setSpeaking(speaking);
}

function setAssistantSpeaking(speaking) {
  debug.assistantSpeaking = speaking;
  assistantVoice.setSpeaking(speaking);
}

function noteItem(itemId) {
  if (!playback || !itemId) return;
  debug.items[itemId] = {
    receivedSamples: playback.receivedSamples(itemId),
    playedSamples: playback.playedSamples(itemId),
  };
}

// ---------------------------------------------------------------- connection

async function connect() {
  clientInfoSentFor = null;
  modeRequests = 0;
  activeResponseId = null;
  pendingResponseCreate = false;
  Object.assign(debug, {
    error: null,
    notice: null,
    conversationId: null,
    mode: null,
    clientInfo: null,
    lastTruncate: null,
    lastClose: null,
    items: {},
    socketPaths: [],
    reconnects: 0,
    muted: false,
  });
  Object.assign(debug.stats, { chunksSent: 0, audioDeltasReceived: 0, samplesPlayed: 0, underruns: 0, truncates: 0 });
  forgetAudioItems();
  conversationLink.hidden = true;
  conversationLink.removeAttribute('href');
  notice.hide();
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
  socket = new ReconnectingSocket({
    path: () => {
      const path = withConversation(wsPath, debug.conversationId);
      debug.socketPaths.push(path);
      return path;
    },
    onEvent,
    onOpen,
    onRetry,
    onClose,
  });
  try {
    socket.connect();
  } catch (error) {
    teardown();
    showError(`Could not connect: ${error.message}`);
    return;
  }
  try {
    if (context.state === 'suspended') await context.resume();
    const p = new Playback(context, {
      onPlayed: (itemId, _total, delta) => {
        debug.stats.samplesPlayed += delta;
        noteItem(itemId);
      },
      onStarted: () => setAssistantSpeaking(true),
      onDrained: () => setAssistantSpeaking(false),
      onUnderrun: () => {
        debug.stats.underruns++;
        if (openAudioItems.size === 0) setAssistantSpeaking(false);
      },
      onLevel: (rms) => {
        debug.outputLevel = rms;
        assistantVoice.setLevel(levelFromRms(rms));
      },
    }, { workletUrl: playbackWorkletUrl });
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

function onOpen({ reconnect }) {
  // The server opens the voice service session after accepting the socket; audio
  // sent before that would be dropped, so sending waits for voicechat.conversation.
  debug.socketOpen = true;
  if (reconnect) status.set('Reconnected; reopening the conversation…', 'busy');
  else if (!debug.error) status.set('Connecting to the voice service…', 'busy');
}

/** The voice session is open (again). */
function sessionReady() {
  if (!socket || (debug.state !== 'connecting' && debug.state !== 'reconnecting')) return;
  const resumed = debug.state === 'reconnecting';
  socket.settled();
  debug.reconnectAttempt = 0;
  setState('connected');
  if (!debug.error) connectedStatus();
  if (resumed) debug.reconnects++;
  sendClientInfo();
}

/** The connection was lost and a reconnect is scheduled. */
function onRetry({ code, delayMs, attempt }) {
  debug.lastClose = { code, reason: '' };
  debug.reconnectAttempt = attempt;
  debug.socketOpen = false;
  connectionLost();
  setState('reconnecting');
  const tries = attempt > 1 ? ` (attempt ${attempt})` : '';
  status.set(`Connection lost, reconnecting in ${formatSeconds(delayMs)}…${tries}`, 'busy');
}

/**
 * What was under way on the lost socket cannot go on. Audio already received still
 * plays to its end (it was said, and will be saved as said); a reply cut off in
 * the middle is marked so.
 */
function connectionLost() {
  resetTalk();
  setUserSpeaking(false);
  activeResponseId = null;
  pendingResponseCreate = false;
  for (const id of openAudioItems) {
    droppedItems.add(id);
    playback?.end(id); // no more is coming: its tail plays out without an underrun
  }
  openAudioItems.clear();
  transcript.markConnectionLost();
}

/** Closed for good: by the server after a fatal error, or reconnecting failed. */
function onClose({ code, reason, opened, gaveUp }) {
  debug.lastClose = { code, reason };
  const error = debug.error;
  const neverConnected = debug.socketPaths.length <= 1 && !opened;
  teardown();
  if (gaveUp) {
    showError('Connection lost, and reconnecting failed. Press Connect to start again.');
  } else if (error) {
    showError(`Disconnected: ${error}`);
  } else if (neverConnected) {
    showError('Could not connect to the server (are you still logged in?).');
  } else if (code === 1000) {
    status.set('Disconnected', 'info');
  } else {
    showError(`Disconnected by the server (code ${code}${reason ? `: ${reason}` : ''}).`);
  }
}

function disconnect() {
  // The reconnecting socket is closed for good here: no reconnect follows.
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
  debug.activeMicrophone = null;
  if (playback) {
    playback.close();
    playback = null;
  }
  if (audioContext) {
    const context = audioContext;
    audioContext = null;
    context.close().catch(() => {});
  }
  forgetAudioItems();
  activeResponseId = null;
  pendingResponseCreate = false;
  setUserSpeaking(false);
  setAssistantSpeaking(false);
  userVoice.setLevel(0);
  assistantVoice.setLevel(0);
  debug.inputLevel = 0;
  debug.outputLevel = 0;
  setState('disconnected');
}

function forgetAudioItems() {
  droppedItems = new Set();
  droppedResponses = new Set();
  openAudioItems = new Set();
  responseOfItem = new Map();
  bargingIn = null;
}

/** Audio may have been suspended (page in the background, iOS): resume it on a click. */
function ensureAudioRunning() {
  if (audioContext && audioContext.state === 'suspended') audioContext.resume().catch(() => {});
}

function send(event) {
  return Boolean(socket && debug.state === 'connected' && socket.send(event));
}

// ---------------------------------------------------------------- microphone

async function startRecording() {
  if (!audioContext || !socket || capture) return;
  if (!navigator.mediaDevices?.getUserMedia) {
    showError('This browser gives pages no microphone (navigator.mediaDevices is missing): type your messages instead.');
    return;
  }
  ensureAudioRunning();
  const c = new Capture({
    context: audioContext,
    deviceId: debug.microphoneId || null,
    onChunk: sendChunk,
    onLevel: (rms) => {
      debug.inputLevel = rms;
      userVoice.setLevel(levelFromRms(rms));
    },
    onEnded: micEnded,
    workletUrl: captureWorkletUrl,
  });
  capture = c;
  debug.recording = true;
  render();
  connectedStatus();
  try {
    try {
      await c.start();
    } catch (error) {
      // A remembered microphone that is gone: fall back to the default one.
      if (error?.name !== 'OverconstrainedError' || !c.deviceId || capture !== c) throw error;
      c.deviceId = null;
      await c.start();
    }
  } catch (error) {
    if (capture !== c) return;
    capture = null;
    debug.recording = false;
    render();
    const reason = error && error.name === 'NotAllowedError' ? 'permission was refused' : error.message;
    showError(`Microphone not available: ${reason}`);
    return;
  }
  if (capture !== c) return;
  debug.activeMicrophone = c.activeDeviceId;
  await listMicrophones();
  sendClientInfo();
}

async function stopRecording() {
  const c = capture;
  capture = null;
  debug.recording = false;
  resetTalk();
  render();
  connectedStatus();
  userVoice.setLevel(0);
  debug.inputLevel = 0;
  debug.activeMicrophone = null;
  if (c) await c.stop();
}

function micEnded(error) {
  capture = null;
  debug.recording = false;
  debug.activeMicrophone = null;
  render();
  userVoice.setLevel(0);
  showError(error.message);
}

/** Open the chosen microphone instead of the current one. */
async function switchMicrophone(deviceId) {
  debug.microphoneId = deviceId;
  store(STORED_MICROPHONE, deviceId);
  if (!capture) return;
  const old = capture;
  capture = null;
  await old.stop();
  if (debug.state === 'disconnected' || capture) return;
  await startRecording();
}

/** Fill the microphone list; labels are only given once permission was granted. */
async function listMicrophones() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  let devices;
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  const inputs = devices.filter((d) => d.kind === 'audioinput' && d.deviceId);
  debug.microphones = inputs.map((d) => ({ deviceId: d.deviceId, label: d.label }));
  const options = [new Option('Default microphone', '')];
  inputs.forEach((d, index) => {
    if (d.deviceId === 'default') return; // the "Default" entry stands for it
    options.push(new Option(d.label || `Microphone ${index + 1}`, d.deviceId));
  });
  microphoneSelect.replaceChildren(...options);
  const wanted = debug.microphoneId;
  microphoneSelect.value = options.some((o) => o.value === wanted) ? wanted : '';
  microphoneSelect.disabled = inputs.length === 0 || !inputs.some((d) => d.label);
}

function sendChunk(int16) {
  if (!socket || debug.state !== 'connected' || debug.muted) return;
  if (debug.preferredMode === 'push_to_talk' && talkState === 'idle') return;
  const audio = base64FromBytes(bytesFromInt16(int16));
  if (socket.send({ type: 'input_audio_buffer.append', audio })) debug.stats.chunksSent++;
}

/** Once per conversation, what the browser really applied to the microphone. */
function sendClientInfo() {
  const id = debug.conversationId;
  if (!capture || id === null || clientInfoSentFor === id || debug.state !== 'connected') return;
  const audio = capture.describe();
  if (!audio) return;
  const event = { type: 'voicechat.client_info', audio, userAgent: navigator.userAgent.slice(0, 500) };
  if (send(event)) {
    clientInfoSentFor = id;
    debug.clientInfo = event;
  }
}

function setMuted(muted) {
  debug.muted = muted;
  render();
  connectedStatus();
}

// ---------------------------------------------------------------- turn taking

function chooseMode(mode) {
  if (!MODES.includes(mode)) return;
  debug.preferredMode = mode;
  store(STORED_MODE, mode);
  if (mode !== 'push_to_talk') resetTalk();
  render();
  requestMode();
}

/** Ask the server for the preferred mode if it is not the one in force. */
function requestMode() {
  if (debug.state !== 'connected' || debug.mode === debug.preferredMode) return;
  if (send({ type: 'voicechat.mode', mode: debug.preferredMode })) {
    modeRequests++;
    lastRequestedMode = debug.preferredMode;
  }
}

function onModeAnswer(event) {
  if (!MODES.includes(event.mode)) return;
  modeRequests = Math.max(0, modeRequests - 1);
  debug.mode = event.mode;
  if (modeRequests > 0 || event.mode === debug.preferredMode) return; // more answers to come, or settled
  if (lastRequestedMode !== debug.preferredMode) {
    requestMode(); // chosen again while the last request was on its way
  } else {
    // The server kept another mode than asked for: show the one in force (and do not ask again).
    debug.preferredMode = event.mode;
    if (event.mode !== 'push_to_talk') resetTalk();
    render();
  }
}

async function talkStart(source) {
  if (debug.preferredMode !== 'push_to_talk' || debug.state !== 'connected' || talkState !== 'idle') return;
  ensureAudioRunning();
  talkState = 'held';
  talkSource = source;
  debug.talking = true;
  render();
  setUserSpeaking(true);
  // The server clears the input buffer and cancels a reply under way; what was
  // heard of it is ours to say.
  send({ type: 'voicechat.talk', action: 'start' });
  bargeIn();
  if (!capture) await startRecording();
}

async function talkStop(source = null) {
  if (talkState !== 'held' || (source && source !== talkSource)) return;
  talkState = 'releasing';
  debug.talking = false;
  render();
  // The last words are still in the worklet's part-filled chunk: send them first.
  if (capture) await capture.flush();
  if (talkState !== 'releasing') return;
  talkState = 'idle';
  talkSource = null;
  setUserSpeaking(false);
  send({ type: 'voicechat.talk', action: 'stop' });
}

/** Forget a hold without sending anything (the socket is gone, or the mode changed). */
function resetTalk() {
  if (talkState === 'idle' && !debug.talking) return;
  talkState = 'idle';
  talkSource = null;
  debug.talking = false;
  setUserSpeaking(false);
}

// ---------------------------------------------------------------- typed messages

async function sendText(text) {
  const message = text.trim();
  if (!message || debug.state !== 'connected') return false;
  ensureAudioRunning();
  // Typing over a reply interrupts it, as speaking would.
  if (activeResponseId !== null) send({ type: 'response.cancel' });
  await bargeIn();
  const item = { type: 'message', role: 'user', content: [{ type: 'input_text', text: message }] };
  if (!send({ type: 'conversation.item.create', item })) return false;
  // A second response.create while one is active is an error: wait for its end.
  if (activeResponseId !== null) pendingResponseCreate = true;
  else send({ type: 'response.create' });
  return true;
}

// ---------------------------------------------------------------- service events

function onEvent(event) {
  const type = event.type;
  if (AUDIO_DELTA.has(type)) {
    onAudioDelta(event);
    return;
  }
  if (AUDIO_DONE.has(type)) {
    openAudioItems.delete(event.item_id);
    if (!droppedItems.has(event.item_id)) playback?.end(event.item_id);
  } else if (type === 'input_audio_buffer.speech_started') {
    setUserSpeaking(true);
    bargeIn();
  } else if (type === 'input_audio_buffer.speech_stopped') {
    if (talkState === 'idle') setUserSpeaking(false);
  } else if (type === 'input_audio_buffer.committed' || type === 'input_audio_buffer.cleared') {
    if (talkState === 'idle') setUserSpeaking(false);
  } else if (type === 'response.created') {
    activeResponseId = event.response?.id ?? 'unknown';
  } else if (type === 'response.done') {
    onResponseDone(event.response);
  } else if (type === 'voicechat.conversation') {
    onConversation(event);
  } else if (type === 'voicechat.mode') {
    onModeAnswer(event);
    return;
  } else if (type === 'voicechat.notice') {
    if (typeof event.message === 'string' && event.message) {
      debug.notice = event.message;
      notice.show(event.message);
    }
    transcript.newSession();
    return;
  } else if (type === 'session.created') {
    transcript.newSession();
  } else if (type === 'error') {
    onServiceError(event.error);
  }
  transcript.handleEvent(event);
}

function onResponseDone(response) {
  for (const item of response?.output ?? []) {
    if (item && openAudioItems.delete(item.id)) playback?.end(item.id);
  }
  activeResponseId = null;
  if (pendingResponseCreate) {
    pendingResponseCreate = false;
    send({ type: 'response.create' });
  }
  const details = response?.status_details;
  if (response?.status === 'failed' && details?.error?.message) showError(details.error.message);
}

function onServiceError(error) {
  const code = error?.code;
  const message = error?.message || code || 'Unknown error from the voice service.';
  if (QUIET_ERRORS.has(code)) return;
  if (Object.hasOwn(SOFT_ERRORS, code)) {
    status.set(SOFT_ERRORS[code], code === 'session_expired' ? 'busy' : 'info');
    return;
  }
  showError(message);
}

function onConversation(event) {
  const id = event.conversation_id;
  const previous = debug.conversationId;
  if (debug.state === 'reconnecting') transcript.newSession();
  if (id !== null && id !== undefined) {
    if (previous !== null && id !== previous) {
      const text = 'The conversation could not be resumed; a new one has started.';
      debug.notice = text;
      notice.show(text);
    }
    debug.conversationId = id;
    conversationLink.href = conversationUrlTemplate.replace('{id}', encodeURIComponent(String(id)));
    conversationLink.textContent = `Saved as conversation #${id}`;
    conversationLink.hidden = false;
  }
  if (typeof event.engine === 'string' && event.engine) {
    debug.engine = event.engine;
    if (engineEl) engineEl.textContent = event.engine;
  }
  debug.mode = MODES.includes(event.mode) ? event.mode : DEFAULT_MODE;
  modeRequests = 0;
  lastRequestedMode = null;
  sessionReady();
  requestMode();
}

function onAudioDelta(event) {
  debug.stats.audioDeltasReceived++;
  const itemId = event.item_id;
  if (!playback || typeof event.delta !== 'string' || !itemId) return;
  if (droppedItems.has(itemId) || (event.response_id && droppedResponses.has(event.response_id))) return;
  if (event.response_id) responseOfItem.set(itemId, event.response_id);
  openAudioItems.add(itemId);
  playback.push(itemId, int16FromBytes(bytesFromBase64(event.delta)));
  noteItem(itemId);
}

/**
 * The user started speaking (or typing, or pressed talk): if assistant audio is
 * playing or queued (or still streaming in), stop it at once and tell the service
 * how much of it was heard, from the worklet's count of samples output.
 */
function bargeIn() {
  if (bargingIn) return bargingIn;
  if (!playback) return Promise.resolve(false);
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
  if (!target) return Promise.resolve(false);
  // From now on, late audio of what is being cut off must not play.
  for (const id of [...queued, ...openAudioItems]) {
    droppedItems.add(id);
    const responseId = responseOfItem.get(id);
    if (responseId) droppedResponses.add(responseId);
  }
  openAudioItems.clear();
  setAssistantSpeaking(false);
  const p = playback;
  const run = async () => {
    try {
      await p.clear();
    } finally {
      bargingIn = null;
    }
    if (playback !== p) return false;
    const playedSamples = p.playedSamples(target);
    const receivedSamples = p.receivedSamples(target);
    const audioEndMs = heardMs(playedSamples, receivedSamples);
    debug.lastTruncate = { itemId: target, audioEndMs, playedSamples, receivedSamples };
    debug.stats.truncates++;
    noteItem(target);
    send({ type: 'conversation.item.truncate', item_id: target, content_index: 0, audio_end_ms: audioEndMs });
    transcript.markInterrupted(target, audioEndMs);
    return true;
  };
  bargingIn = run();
  return bargingIn;
}

// ---------------------------------------------------------------- controls

connectButton.addEventListener('click', () => {
  if (debug.state === 'disconnected') connect();
  else disconnect();
});

recordButton.addEventListener('click', () => {
  if (debug.state !== 'connected' && debug.state !== 'reconnecting') return;
  if (debug.recording) stopRecording();
  else startRecording();
});

muteButton.addEventListener('click', () => {
  ensureAudioRunning();
  setMuted(!debug.muted);
});

for (const input of modeInputs) {
  input.addEventListener('change', () => {
    if (input.checked) chooseMode(input.value);
  });
}

microphoneSelect.addEventListener('change', () => switchMicrophone(microphoneSelect.value));
navigator.mediaDevices?.addEventListener?.('devicechange', () => {
  if (debug.recording) listMicrophones();
});

composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = messageInput.value;
  if (!text.trim()) return;
  if (await sendText(text)) messageInput.value = '';
});

// Push-to-talk: a press and hold of the button (mouse, pen or touch), or of the
// space bar anywhere but in a text field.
if (window.PointerEvent) {
  talkButton.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    event.preventDefault(); // no text selection or callout on a long touch
    talkButton.setPointerCapture?.(event.pointerId);
    talkStart('pointer');
  });
  for (const name of ['pointerup', 'pointercancel', 'lostpointercapture']) {
    talkButton.addEventListener(name, () => talkStop('pointer'));
  }
} else {
  talkButton.addEventListener('touchstart', (event) => {
    event.preventDefault();
    talkStart('pointer');
  });
  talkButton.addEventListener('mousedown', () => talkStart('pointer'));
  for (const name of ['touchend', 'touchcancel', 'mouseup', 'mouseleave']) {
    talkButton.addEventListener(name, () => talkStop('pointer'));
  }
}
talkButton.addEventListener('contextmenu', (event) => event.preventDefault());

function isSpace(event) {
  return event.code === 'Space' || event.key === ' ';
}

document.addEventListener('keydown', (event) => {
  if (!isSpace(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (debug.preferredMode !== 'push_to_talk' || debug.state !== 'connected' || isTextEntry(event.target)) return;
  event.preventDefault(); // the focused button is not clicked, the page does not scroll
  if (!event.repeat) talkStart('key');
});

document.addEventListener('keyup', (event) => {
  if (!isSpace(event) || talkSource !== 'key') return;
  event.preventDefault();
  talkStop('key');
});

// A key or button released while the page was not looking must not leave talk on.
window.addEventListener('blur', () => talkStop());
document.addEventListener('visibilitychange', () => {
  if (document.hidden) talkStop();
});

window.addEventListener('pagehide', () => {
  if (debug.state !== 'disconnected') disconnect();
});

/**
 * Browsers give the microphone, and the audio worklets that play the replies, only to secure
 * pages (https, or http://localhost): on any other page say how to fix it, and leave Connect off.
 */
function showInsecureContext() {
  debug.insecureContext = true;
  $('insecure-context').hidden = false;
  showError('Voice cannot work on this page: it was not opened over https (see above).');
}

setState('disconnected');
// The buttons are rendered disabled so a click cannot land before this module has run.
if (window.isSecureContext) connectButton.disabled = false;
else showInsecureContext();
