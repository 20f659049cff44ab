// Tests for static/voicechat/order.js and the DOM-free helpers of static/voicechat/ui.js.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ItemOrder } from '../../static/voicechat/order.js';
import { formatSeconds, interruptedNote, isHistoryItem, isTextEntry } from '../../static/voicechat/ui.js';

describe('ItemOrder', () => {
  test('follows previous_item_id, not arrival', () => {
    const order = new ItemOrder();
    order.place('a1', undefined); // the reply's delta arrives first
    order.place('u1', null); // then the user item, first of the session
    order.place('a1', 'u1');
    assert.deepEqual(order.ids, ['u1', 'a1']);
    order.place('u2', 'a1');
    order.place('a2', 'u2');
    assert.deepEqual(order.ids, ['u1', 'a1', 'u2', 'a2']);
  });

  test('a late user item goes before the reply that followed it', () => {
    const order = new ItemOrder();
    order.place('u1', null);
    order.place('a1', 'u1');
    order.place('a2', 'u2'); // u2 not known yet: a2 waits at the end
    order.place('u2', 'a1');
    assert.deepEqual(order.ids, ['u1', 'a1', 'u2', 'a2']);
  });

  test('an item is placed once; later hints do not move it', () => {
    const order = new ItemOrder();
    assert.equal(order.place('u1', null), true);
    assert.equal(order.place('a1', 'u1'), true);
    assert.equal(order.place('u1', 'a1'), false);
    assert.equal(order.place('a1', undefined), false);
    assert.deepEqual(order.ids, ['u1', 'a1']);
  });

  test('an unknown predecessor puts the item last', () => {
    const order = new ItemOrder();
    order.place('u1', null);
    order.place('x', 'never-seen');
    assert.deepEqual(order.ids, ['u1', 'x']);
  });

  test('after mark(), a new session starts below what is there', () => {
    const order = new ItemOrder();
    order.place('u1', null);
    order.place('a1', 'u1');
    order.mark();
    order.place('a9', undefined); // the new session's reply shows up first
    order.place('u9', null);
    order.place('a9', 'u9');
    assert.deepEqual(order.ids, ['u1', 'a1', 'u9', 'a9']);
    order.clear();
    order.place('z', null);
    assert.deepEqual(order.ids, ['z']);
  });

  test('before() finds the nearest earlier item that passes the test', () => {
    const order = new ItemOrder();
    for (const [id, prev] of [
      ['u1', null],
      ['f1', 'u1'],
      ['a1', 'f1'],
    ]) {
      order.place(id, prev);
    }
    assert.equal(
      order.before('a1', (id) => id !== 'f1'),
      'u1',
    );
    assert.equal(
      order.before('u1', () => true),
      null,
    );
  });
});

describe('isTextEntry (where the space bar types instead of talking)', () => {
  test('text boxes, text areas, selects and editable areas', () => {
    assert.equal(isTextEntry({ tagName: 'INPUT', type: 'text' }), true);
    assert.equal(isTextEntry({ tagName: 'input', type: 'search' }), true);
    assert.equal(isTextEntry({ tagName: 'INPUT' }), true);
    assert.equal(isTextEntry({ tagName: 'TEXTAREA' }), true);
    assert.equal(isTextEntry({ tagName: 'SELECT' }), true);
    assert.equal(isTextEntry({ tagName: 'DIV', isContentEditable: true }), true);
  });

  test('not buttons, radios, the page itself', () => {
    assert.equal(isTextEntry({ tagName: 'BUTTON' }), false);
    assert.equal(isTextEntry({ tagName: 'INPUT', type: 'radio' }), false);
    assert.equal(isTextEntry({ tagName: 'INPUT', type: 'checkbox' }), false);
    assert.equal(isTextEntry({ tagName: 'BODY' }), false);
    assert.equal(isTextEntry(null), false);
  });
});

describe('labels', () => {
  test('formatSeconds', () => {
    assert.deepEqual([500, 1000, 2000, 4000, 1250].map(formatSeconds), ['0.5 s', '1 s', '2 s', '4 s', '1.3 s']);
  });

  test('interruptedNote', () => {
    assert.equal(interruptedNote(2345), 'interrupted after 2.3 s heard');
    assert.equal(interruptedNote(null), 'interrupted');
  });
});

describe('isHistoryItem', () => {
  test('the ids the server gives re-sent earlier turns', () => {
    assert.equal(isHistoryItem('vchist_3'), true);
    assert.equal(isHistoryItem('item_0003'), false);
    assert.equal(isHistoryItem(null), false);
  });
});
