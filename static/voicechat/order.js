// Conversation order of realtime items, without the DOM (tested in Node).
//
// The service says where each item goes with `previous_item_id`, and events do
// not arrive in that order: a user's transcript often lands after the reply has
// begun. An item is placed for good the first time its predecessor is given; an
// item seen before that (from a delta, say) waits at the end until then.
//
// `previous_item_id: null` means "first of this service session". After a
// reconnect or a renewed session the page keeps the earlier turns on screen, so
// mark() sets where a new session begins: its first item goes after everything
// seen so far instead of to the very top.

export class ItemOrder {
  constructor() {
    this.ids = [];
    this.placed = new Set();
    this.anchor = null; // the id a new session's first item follows (null: the top)
  }

  clear() {
    this.ids = [];
    this.placed.clear();
    this.anchor = null;
  }

  get length() {
    return this.ids.length;
  }

  has(id) {
    return this.ids.includes(id);
  }

  indexOf(id) {
    return this.ids.indexOf(id);
  }

  /** A new service session starts here (see above). */
  mark() {
    this.anchor = this.ids.length > 0 ? this.ids[this.ids.length - 1] : null;
  }

  /**
   * Note item `id`: right after `previousId` when it is given (null: first of the
   * session; undefined: not said, so it stays where it is or goes last). Returns
   * true when the item was (re)positioned by this call.
   */
  place(id, previousId) {
    const index = this.ids.indexOf(id);
    if (previousId !== undefined && !this.placed.has(id)) {
      if (index >= 0) this.ids.splice(index, 1);
      const after = previousId === null ? this.anchor : previousId;
      const p = after === null ? -1 : this.ids.indexOf(after);
      if (after === null) this.ids.unshift(id);
      else if (p >= 0) this.ids.splice(p + 1, 0, id);
      else this.ids.push(id); // a predecessor we never saw (not relayed): after what we have
      this.placed.add(id);
      return true;
    }
    if (index < 0) {
      this.ids.push(id);
      return true;
    }
    return false;
  }

  /** The nearest item before `id` for which `test(itemId)` holds, or null. */
  before(id, test) {
    for (let k = this.ids.indexOf(id) - 1; k >= 0; k--) if (test(this.ids[k])) return this.ids[k];
    return null;
  }
}
