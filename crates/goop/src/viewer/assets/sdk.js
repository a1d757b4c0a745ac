// goop JS SDK: served at /_goop/sdk.js on every peer's origin. It talks to that peer only,
// through the visitor's own goop peer (the viewer), which calls the site's peer over
// /goop/data/1.0.0 as the visitor's peer ID.
(function () {
  "use strict";
  var info = /*GOOP_INFO*/null;

  function request(body) {
    return fetch("/_goop/data", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.text().then(function (text) {
        var answer;
        try {
          answer = JSON.parse(text);
        } catch (e) {
          throw new Error(text || "HTTP " + response.status);
        }
        if (!answer || answer.ok !== true) {
          throw new Error((answer && answer.error) || "request failed");
        }
        return answer;
      });
    });
  }

  function filter(body, where, args) {
    if (where !== undefined) body.where = where;
    if (args !== undefined) body.args = args;
    return body;
  }

  var data = Object.freeze({
    /** Calls the peer's data function `fn` (site/lua/functions/fn.lua) with `params`. */
    call: function (fn, params) {
      return request({ op: "lua-call", function: fn, params: params === undefined ? {} : params })
        .then(function (a) { return a.result; });
    },
    /** The peer's data functions: [{name, description}]. */
    list: function () {
      return request({ op: "lua-list" }).then(function (a) { return a.functions; });
    },
    /** The tables the peer lets this visitor see. */
    tables: function () {
      return request({ op: "tables" }).then(function (a) { return a.tables; });
    },
    describe: function (table) {
      return request({ op: "describe", table: table }).then(function (a) { return a.columns; });
    },
    /** Rows of `table`; options: columns, where, args, order, limit, offset. */
    query: function (table, options) {
      var body = { op: "query", table: table };
      var o = options || {};
      ["columns", "where", "args", "order", "limit", "offset"].forEach(function (k) {
        if (o[k] !== undefined) body[k] = o[k];
      });
      return request(body).then(function (a) { return a.rows; });
    },
    /** Inserts a row owned by the visitor; resolves to its _id. */
    insert: function (table, row) {
      return request({ op: "insert", table: table, data: row }).then(function (a) { return a.id; });
    },
    /** Updates the visitor's own rows matching `where`; resolves to the number changed. */
    update: function (table, row, where, args) {
      return request(filter({ op: "update", table: table, data: row }, where, args))
        .then(function (a) { return a.affected; });
    },
    /** Deletes the visitor's own rows matching `where`; resolves to the number deleted. */
    delete: function (table, where, args) {
      return request(filter({ op: "delete", table: table }, where, args))
        .then(function (a) { return a.affected; });
    },
    /** Any data-protocol request; resolves to the whole answer. */
    request: request,
  });

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /**
   * Joins group `name` at this page's peer. `onMessage(message)` gets what the peer's scripts
   * send with goop.group.send. options.status(state) hears "connected", "disconnected" (the
   * SDK joins again by itself), "refused" and "left"; options.missed(count) hears that the page
   * fell behind and lost `count` messages (fetch the state again). Returns
   * {ready, send(message), leave(), connected}: `ready` rejects with the peer's reason when it
   * refuses the page.
   */
  function join(name, onMessage, options) {
    var o = options || {};
    var left = false;
    var joinedOnce = false;
    var controller = null;
    var wait = 1000;
    var settle = {};
    var handle = {
      name: name,
      connected: false,
      ready: new Promise(function (resolve, reject) {
        settle.resolve = resolve;
        settle.reject = reject;
      }),
      send: function (message) {
        return post("/_goop/group/send", { group: name, message: message }).then(function (response) {
          return response.json().then(function (answer) {
            if (!answer || answer.ok !== true) throw new Error((answer && answer.error) || "send failed");
          });
        });
      },
      leave: function () {
        left = true;
        if (controller) controller.abort();
        status("left");
      },
    };

    // The page's own callbacks: one that throws is reported like any uncaught error, and
    // neither ends the stream (its next messages would be lost) nor makes the page join again.
    function callback(f, value) {
      try {
        f(value);
      } catch (e) {
        setTimeout(function () {
          throw e;
        });
      }
    }

    function status(state) {
      handle.connected = state === "connected";
      if (o.status) callback(o.status, state);
    }

    function frame(line) {
      if (!line) return;
      var f = JSON.parse(line);
      if (f.type === "joined") {
        joinedOnce = true;
        wait = 1000;
        status("connected");
        settle.resolve(handle);
      } else if (f.type === "message") {
        callback(onMessage, f.message);
      } else if (f.type === "missed" && o.missed) {
        callback(o.missed, f.count);
      }
    }

    function read(reader) {
      var decoder = new TextDecoder();
      var buffered = "";
      function next() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffered += decoder.decode(chunk.value, { stream: true });
          var lines = buffered.split("\n");
          buffered = lines.pop();
          lines.forEach(frame);
          return next();
        });
      }
      return next();
    }

    function again() {
      if (left) return;
      status("disconnected");
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 10000);
    }

    function connect() {
      if (left) return;
      controller = new AbortController();
      fetch("/_goop/group/join", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ group: name }),
        signal: controller.signal,
      }).then(function (response) {
        if (response.status === 403 || response.status === 400) {
          return response.json().then(function (answer) {
            left = true;
            status("refused");
            var e = new Error((answer && answer.error) || "refused");
            if (!joinedOnce) settle.reject(e);
          });
        }
        if (!response.ok || !response.body) return again();
        return read(response.body.getReader()).then(again, again);
      }, again);
    }

    connect();
    return handle;
  }

  var group = Object.freeze({ join: join });

  window.Goop = Object.freeze({
    /** The peer whose browser this is: {id, label}. */
    self: Object.freeze(info.self),
    /** The peer whose site this is: {id, label}. */
    peer: Object.freeze(info.peer),
    data: data,
    /** Live groups at this page's peer: Goop.group.join(name, onMessage, options). */
    group: group,
  });
  window.goopData = data;
})();
