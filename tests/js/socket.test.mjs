// Tests for static/voicechat/socket.js: the reconnect schedule and rules, and
// ReconnectingSocket driven with a fake WebSocket and mocked timers.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';

import {
  RECONNECT_TRIES,
  ReconnectingSocket,
  reconnectDelay,
  shouldReconnect,
  socketUrl,
  withConversation,
} from '../../static/voicechat/socket.js';

class FakeWebSocket {
  static made = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = {};
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.made.push(this);
  }

  addEventListener(type, listener) {
    (this.listeners[type] ??= []).push(listener);
  }

  emit(type, event = {}) {
    for (const listener of this.listeners[type] ?? []) listener(event);
  }

  open() {
    this.readyState = 1;
    this.emit('open');
  }

  receive(event) {
    this.emit('message', { data: JSON.stringify(event) });
  }

  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.emit('close', { code, reason, wasClean: code !== 1006 });
  }

  send(data) {
    this.sent.push(data);
  }

  close(code = 1000) {
    this.readyState = 2;
    this.closedWith = code;
  }
}

describe('reconnectDelay', () => {
  test('0.5 s, 1 s, 2 s, 4 s, 4 s, then gives up after 5 tries', () => {
    const delays = [];
    for (let attempt = 0; attempt < 10; attempt++) delays.push(reconnectDelay(attempt));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 4000, null, null, null, null, null]);
    assert.equal(RECONNECT_TRIES, 5);
  });

  test('takes its own limits, and refuses nonsense', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((n) => reconnectDelay(n, { tries: 3, baseMs: 100, maxMs: 250 })),
      [100, 200, 250, null],
    );
    assert.equal(reconnectDelay(-1), null);
    assert.equal(reconnectDelay(1.5), null);
  });
});

describe('shouldReconnect', () => {
  test('after an abnormal close and other codes the user did not ask for', () => {
    for (const code of [1006, 1001, 1011, 1012, 4012, 1013, 1000, 3000]) {
      assert.equal(shouldReconnect({ code }), true, code);
    }
  });

  test('never after a 4xxx close (a fatal error or a limit), an abuse close or when the user closed', () => {
    for (const code of [4000, 4001, 4008, 4401, 4402, 4408, 4409, 4410, 4500, 4502, 4999, 1008]) {
      assert.equal(shouldReconnect({ code }), false, code);
    }
    assert.equal(shouldReconnect({ code: 1006, userClosed: true }), false);
  });
});

describe('URLs', () => {
  test('socketUrl follows the page scheme', () => {
    assert.equal(socketUrl('/ws/realtime/', { protocol: 'https:', host: 'chat.example' }), 'wss://chat.example/ws/realtime/');
    assert.equal(socketUrl('ws/x', { protocol: 'http:', host: '127.0.0.1:8000' }), 'ws://127.0.0.1:8000/ws/x');
  });

  test('withConversation adds the id, keeps other parameters, and nothing without an id', () => {
    assert.equal(withConversation('/ws/realtime/', 12), '/ws/realtime/?conversation=12');
    assert.equal(withConversation('/ws/realtime/?a=1', 12), '/ws/realtime/?a=1&conversation=12');
    assert.equal(withConversation('/ws/realtime/?conversation=3', 12), '/ws/realtime/?conversation=12');
    assert.equal(withConversation('/ws/realtime/', null), '/ws/realtime/');
    assert.equal(withConversation('/ws/realtime/', undefined), '/ws/realtime/');
  });
});

describe('ReconnectingSocket', () => {
  let log;
  let conversation;

  beforeEach(() => {
    FakeWebSocket.made = [];
    mock.timers.enable({ apis: ['setTimeout'] });
    log = [];
    conversation = null;
  });

  afterEach(() => {
    mock.timers.reset();
  });

  function make() {
    return new ReconnectingSocket({
      path: () => withConversation('ws://127.0.0.1/ws/realtime/', conversation),
      onEvent: (event) => log.push(['event', event.type]),
      onOpen: (info) => log.push(['open', info.reconnect]),
      onRetry: (info) => log.push(['retry', info.code, info.delayMs, info.attempt]),
      onClose: (info) => log.push(['close', info.code, info.gaveUp]),
      WebSocket: FakeWebSocket,
    });
  }

  test('reconnects after an abnormal close with the conversation id, and starts over once settled', () => {
    const socket = make();
    socket.connect();
    FakeWebSocket.made[0].open();
    FakeWebSocket.made[0].receive({ type: 'voicechat.conversation', conversation_id: 7 });
    conversation = 7;
    socket.settled();
    assert.equal(socket.send({ type: 'x' }), true);

    FakeWebSocket.made[0].drop(1006);
    assert.equal(socket.reconnecting, true);
    assert.equal(socket.send({ type: 'x' }), false);
    mock.timers.tick(499);
    assert.equal(FakeWebSocket.made.length, 1);
    mock.timers.tick(1);
    assert.equal(FakeWebSocket.made.length, 2);
    assert.equal(FakeWebSocket.made[1].url, 'ws://127.0.0.1/ws/realtime/?conversation=7');

    // The first attempt fails before opening: the next waits twice as long.
    FakeWebSocket.made[1].drop(1006);
    mock.timers.tick(999);
    assert.equal(FakeWebSocket.made.length, 2);
    mock.timers.tick(1);
    FakeWebSocket.made[2].open();
    assert.equal(socket.reconnecting, false);
    socket.settled();

    // A later loss starts from 0.5 s again.
    FakeWebSocket.made[2].drop(1001);
    mock.timers.tick(500);
    assert.equal(FakeWebSocket.made.length, 4);
    assert.deepEqual(log, [
      ['open', false],
      ['event', 'voicechat.conversation'],
      ['retry', 1006, 500, 1],
      ['retry', 1006, 1000, 2],
      ['open', true],
      ['retry', 1001, 500, 1],
    ]);
    socket.close();
  });

  test('gives up after five tries', () => {
    const socket = make();
    socket.connect();
    FakeWebSocket.made[0].open();
    FakeWebSocket.made[0].drop(1006);
    for (const delay of [500, 1000, 2000, 4000, 4000]) {
      mock.timers.tick(delay);
      FakeWebSocket.made.at(-1).drop(1006);
    }
    assert.equal(FakeWebSocket.made.length, 6);
    assert.deepEqual(log.at(-1), ['close', 1006, true]);
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 6);
  });

  test('does not reconnect after a 4xxx close', () => {
    const socket = make();
    socket.connect();
    FakeWebSocket.made[0].open();
    FakeWebSocket.made[0].drop(4502, 'service error');
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 1);
    assert.deepEqual(log, [
      ['open', false],
      ['close', 4502, false],
    ]);
  });

  test('does not reconnect after the user closed, even with a retry pending', () => {
    const socket = make();
    socket.connect();
    FakeWebSocket.made[0].open();
    socket.close();
    assert.equal(FakeWebSocket.made[0].closedWith, 1000);
    FakeWebSocket.made[0].drop(1006); // the close event of our own close
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 1);

    const again = make();
    again.connect();
    FakeWebSocket.made[1].open();
    FakeWebSocket.made[1].drop(1006);
    again.close();
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 2);
    assert.equal(log.filter(([what]) => what === 'close').length, 0);
  });

  test('a first connection that never opened is not retried', () => {
    const socket = make();
    socket.connect();
    FakeWebSocket.made[0].drop(1006);
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.made.length, 1);
    assert.deepEqual(log, [['close', 1006, false]]);
  });
});
